import ArgumentParser
import LSTMCommandLine
import LSTMKit

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract:
            "List the CPU path (processor, threads, BLAS library and kernels) and the OpenCL devices (the index "
            + "is what --device and LSTM_GPU_DEVICE take)."
    )

    func run() throws {
        for line in CPUInfo.current.details { print(line) }
        let devices = try OpenCLDevices.all()
        guard !devices.isEmpty else {
            print("no OpenCL platform or device found; the CPU path is available (--backend cpu).")
            print("Install an OpenCL driver (e.g. pocl-opencl-icd, or your GPU vendor's) to use --backend opencl.")
            return
        }
        let chosen = try? OpenCLDevices.select()
        for d in devices {
            print("[\(d.index)] \(d.name)\(d.index == chosen?.index ? "  (default)" : "")")
            print("    vendor \(d.vendor); platform \(d.platform); type \(d.type)")
            print("    \(d.version); driver \(d.driverVersion)")
            print(
                "    compute units \(d.computeUnits); global memory \(formatBytes(d.globalMemory)) (max allocation "
                    + "\(formatBytes(d.maxAllocation))); "
                    + "local memory \(formatBytes(d.localMemory))")
            print(
                "    max work-group size \(d.maxWorkGroupSize); fp16 \(d.fp16 ? "yes" : "no"); fp64 "
                    + "\(d.fp64 ? "yes" : "no")"
            )
        }
    }
}
