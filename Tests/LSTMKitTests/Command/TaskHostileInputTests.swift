import Foundation
import XCTest

/// `lstm-gpu train --task` as a hostile user drives it: each class of mistake gets a message
/// that names it and the exit code the docs give (64 usage, found before any data is read; 2 an
/// input or output that cannot be used; 3 a diverged fit), and nothing the user had is destroyed.
final class TaskHostileInputTests: XCTestCase {
    var folder = ""
    var series = ""

    override func setUpWithError() throws {
        try requireLSTMGPU()
        folder = try temporaryFolder()
        series = folder + "/series.csv"
        try FileManager.default.copyItem(atPath: fixtureFolder + "/apps/sunspots.csv", toPath: series)
    }

    /// Runs `lstm-gpu` in the test's folder (train on one thread).
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runProcess(
            lstmGPUExecutable.path, arguments + (arguments.first == "train" ? ["--threads", "1"] : []),
            directory: folder)
    }

    func testBadValuesAreUsageErrorsBeforeTheDataIsRead() throws {
        let missing = folder + "/no-such-data.csv"  // never read: every value is checked first
        let cases: [([String], String)] = [
            (["--test-fraction", "0"], "the test fraction (0.0) > 0"),
            (["--validation-fraction", "0.5", "--test-fraction", "0.5"], "summing to less than 1"),
            (["--batch", "1099511627776"], "fit batchSize is 1099511627776, above the limit of 16777216"),
            (["--layers", "2000"], "--layers must be in 1...1024, got 2000"),
            (["--layer-norm", "--layer-norm-eps", "0"], "--layer-norm-eps must be a positive finite number"),
            (["--cell-clip", "nan"], "--cell-clip must be a finite number in 0.0..."),
            (["--weight-decay", "nan"], "--weight-decay must be a finite number in 0.0..."),
            (["--weight-decay", "-1"], "--weight-decay must be a finite number in 0.0..."),
            (["--momentum", "nan"], "--momentum must be a finite number in 0.0...1.0, got nan"),
            (["--lr", "0"], "--lr must be a finite number in 1e-30...1000000.0, got 0.0"),
            (["--season", "30"], "--season 30 must not exceed --window 24"),
            (["--checkpoint", ""], "--checkpoint needs a file name"),
        ]
        for (arguments, message) in cases {
            let result = try run(["train", "--task", "forecast", "--data", missing] + arguments)
            XCTAssertEqual(result.status, 64, "\(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains(message), "\(arguments): \(result.output)")
        }
    }

    func testOutputsThatWouldDestroyAFileAreRefusedBeforeTraining() throws {
        let before = try Data(contentsOf: URL(fileURLWithPath: series))
        let link = folder + "/link.csv"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: series)
        let cases: [([String], String)] = [
            (["--checkpoint", series], "--data and --checkpoint name the same file"),
            (["--log", "./series.csv"], "--data and --log name the same file"),
            (["--log", link], "--data and --log name the same file"),
            (["--checkpoint", "m.safetensors", "--log", "m.safetensors"], "--checkpoint and --log name the same file"),
            (["--checkpoint", "m.safetensors", "--log", "m.safetensors.fitstate"], "name the same file"),
            (["--checkpoint", "dir/"], "names a folder"),
            (["--checkpoint", "fresh.safetensors", "--resume"], "there is no fit state to resume from"),
        ]
        for (arguments, message) in cases {
            let result = try run(["train", "--task", "forecast", "--data", series, "--epochs", "1"] + arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains(message), "\(arguments): \(result.output)")
            XCTAssertFalse(result.output.contains("epochs,"), "trained before refusing: \(result.output)")
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: series)), before, "the data file was changed")
        // A symbolic link to a file that does not exist yet is followed: a log through it would be
        // renamed over by the checkpoint.
        try FileManager.default.createSymbolicLink(
            atPath: folder + "/dangling", withDestinationPath: "later.safetensors")
        let dangling = try run([
            "train", "--task", "forecast", "--data", series, "--epochs", "1", "--checkpoint", "later.safetensors",
            "--log", "dangling",
        ])
        XCTAssertEqual(dangling.status, 2, dangling.output)
        XCTAssertTrue(dangling.output.contains("--checkpoint and --log name the same file"), dangling.output)
        let hard = folder + "/hard.csv"
        try FileManager.default.linkItem(atPath: series, toPath: hard)
        let result = try run(["train", "--task", "forecast", "--data", series, "--epochs", "1", "--log", hard])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.output.contains("name the same file"), result.output)
        // A --translations prefix in a folder that cannot be made is refused before training.
        try Data().write(to: URL(fileURLWithPath: folder + "/blocker"))
        let translate = try run([
            "train", "--task", "translate", "--data", fixtureFolder + "/apps/bible-300.en", "--target-data",
            fixtureFolder + "/apps/bible-300.es", "--epochs", "1", "--translations", folder + "/blocker/out",
        ])
        XCTAssertEqual(translate.status, 2, translate.output)
        XCTAssertTrue(translate.output.contains("--translations (.hyp)"), translate.output)
    }

    func testAModelTooLargeForTheHostIsRefusedNotAborted() throws {
        let result = try run(["train", "--task", "forecast", "--data", series, "--hidden", "1000000", "--epochs", "1"])
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(result.output.contains("out of memory on host"), result.output)
        XCTAssertTrue(result.output.contains("TiB"), result.output)
    }

    func testADivergedFitExits3() throws {
        let result = try run([
            "train", "--task", "forecast", "--data", series, "--epochs", "3", "--lr", "1e6", "--clip", "0",
            "--optimizer", "sgd", "--momentum", "0", "--no-early-stop",
        ])
        XCTAssertEqual(result.status, 3, result.output)
        XCTAssertTrue(result.output.contains("training diverged: the loss is"), result.output)
    }

    func testBenchCellListsWithEmptyItemsAreUsageErrors() throws {
        for cell in ["", "peephole,", "=", ",cifg"] {
            let result = try run(["bench", "--cell", cell, "--list"])
            XCTAssertEqual(result.status, 64, "'\(cell)': \(result.output)")
            XCTAssertTrue(result.output.contains("--cell"), "'\(cell)': \(result.output)")
        }
    }

    func testInspectNamesEveryKindOfProjectFile() throws {
        let model = folder + "/m.safetensors"
        let trained = try run(["train", "--task", "forecast", "--data", series, "--epochs", "1", "--checkpoint", model])
        XCTAssertEqual(trained.status, 0, trained.output)
        let expectations: [(String, [String])] = [
            (model, ["a Sequential model", "lstm → pooling → linear", "parameters", "lstm_gpu_standardizer"]),
            (model + ".fitstate", ["fit state file", "1 epoch done", "--resume"]),
            (fixtureFolder + "/basic.safetensors", ["a parity fixture", "lstm-gpu check"]),
        ]
        for (path, fragments) in expectations {
            let result = try run(["inspect", path])
            XCTAssertEqual(result.status, 0, result.output)
            for fragment in fragments { XCTAssertTrue(result.output.contains(fragment), "\(path): \(result.output)") }
        }
        // A reader of LSTM state_dicts given a model file says what it is and where its LSTM is.
        let export = try run(["export", model, "--output", folder + "/m.onnx"])
        XCTAssertEqual(export.status, 2, export.output)
        XCTAssertTrue(export.output.contains("not an LSTM state_dict"), export.output)
        XCTAssertTrue(export.output.contains("a Sequential model"), export.output)
        XCTAssertTrue(export.output.contains("--prefix 0."), export.output)
        let exported = try run(["export", model, "--prefix", "0.", "--output", folder + "/m.onnx"])
        XCTAssertEqual(exported.status, 0, exported.output)
        let sample = try run(["sample", "--checkpoint", model])
        XCTAssertEqual(sample.status, 2, sample.output)
        XCTAssertTrue(sample.output.contains("it is an lstm-gpu model file (a Sequential model)"), sample.output)
        let state = try run(["inspect", model + ".fitstate", "--prefix", ""])
        XCTAssertEqual(state.status, 0, state.output)
    }

    /// A file far larger than memory (a sparse 2 TiB file) is refused from its size before any
    /// of it is read, naming the file and what it needs, wherever a file is read whole.
    func testFilesLargerThanMemoryAreRefusedFromTheirSize() throws {
        let huge = folder + "/huge.safetensors"
        XCTAssertTrue(FileManager.default.createFile(atPath: huge, contents: Data("{}".utf8)))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: huge))
        try handle.truncate(atOffset: 2 << 40)
        try handle.close()
        let model = folder + "/model.safetensors"
        let imported = try run(["import", fixtureFolder + "/onnx/plain.onnx", "--output", model])
        XCTAssertEqual(imported.status, 0, imported.output)
        let started = Date()
        for arguments in [
            ["run", model, "--input", huge, "--output", folder + "/out.safetensors"],
            ["inspect", huge],
            ["sample", "--checkpoint", huge],
        ] {
            let result = try run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.output)")
            XCTAssertTrue(result.output.contains("out of memory on host (reading \(huge))"), result.output)
            XCTAssertTrue(result.output.contains("needs 2.00 TiB"), result.output)
            XCTAssertFalse(result.output.contains("NSCocoaErrorDomain"), result.output)
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 30, "the refusals must not read the file")
    }

    /// Without --checkpoint the best model goes to the temporary folder: an unusable TMPDIR is
    /// refused before training, with the system's reason.
    func testAnUnusableTemporaryFolderIsRefusedBeforeTraining() throws {
        try Data().write(to: URL(fileURLWithPath: folder + "/file"))
        let result = try runProcess(
            lstmGPUExecutable.path, ["train", "--task", "forecast", "--data", series, "--epochs", "1"],
            environment: ["TMPDIR": folder + "/file/tmp"], directory: folder)
        XCTAssertEqual(result.status, 2, result.output)
        XCTAssertTrue(
            result.output.contains(
                "TMPDIR (where the best model is kept without --checkpoint) is not a writable folder"),
            result.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/file/tmp"), "a refused run made a folder")
        XCTAssertFalse(result.output.contains("epochs,"), result.output)
    }

    /// What a data file holds reaches the terminal escaped: a class name with a terminal escape.
    func testValuesFromFilesAreEscapedOnTheTerminal() throws {
        var table = "label\ttext\n"
        for i in 0..<20 { table += (i % 2 == 0 ? "\u{1B}[31mred" : "blue") + "\tword\(i % 3) word\n" }
        try Data(table.utf8).write(to: URL(fileURLWithPath: folder + "/escape.tsv"))
        let result = try run(["train", "--task", "classify", "--data", folder + "/escape.tsv", "--epochs", "1"])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("\\u{1b}[31mred"), result.output)
        XCTAssertFalse(result.output.contains("\u{1B}[31m"), "a raw escape reached the terminal: \(result.output)")
    }
}
