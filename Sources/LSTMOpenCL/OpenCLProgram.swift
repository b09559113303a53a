// OpenCLProgram.swift: how a runtime gets a program (from memory, the on-disk binary cache, or
// compiled from source, a failed build throwing with its log) and a kernel of it with its
// work-group limit, each made once and then reused.

import COpenCL
import Foundation
@_spi(Backend) import LSTMCore

extension OpenCLRuntime {
    /// The program for `source` built with `options`: from memory, else from the on-disk
    /// binary cache, else compiled (and then cached). A failed build throws with its log.
    func program(named name: String, source: String, options: String) throws -> cl_program {
        let key = name + "\u{0}" + options
        if let program = programs[key] { return program }
        let cache = ProgramBinaryCache(device: device, source: source, options: options)
        if let binary = cache.load(), let program = try? buildFromBinary(binary, options: options) {
            programs[key] = program
            return program
        }
        let program = try buildFromSource(name: name, source: source, options: options)
        if let binary = try? binary(of: program) { cache.store(binary) }
        programs[key] = program
        return program
    }

    private func buildFromSource(name: String, source: String, options: String) throws -> cl_program {
        var status: cl_int = 0
        let program: cl_program? = source.withCString { text in
            var pointer: UnsafePointer<CChar>? = text
            var length = strlen(text)
            return clCreateProgramWithSource(context, 1, &pointer, &length, &status)
        }
        guard let program, status == CL_SUCCESS else {
            throw LSTMError.openCL(call: "clCreateProgramWithSource(\(name))", status: openCLStatusName(status))
        }
        var id: cl_device_id? = device.id
        let built = clBuildProgram(program, 1, &id, options, nil, nil)
        if built != CL_SUCCESS {
            let log = buildLog(program)
            clReleaseProgram(program)
            if built == CL_BUILD_PROGRAM_FAILURE || built == CL_INVALID_BUILD_OPTIONS
                || built == CL_COMPILE_PROGRAM_FAILURE
            {
                throw LSTMError.kernelBuild(
                    program: name, device: device.name,
                    log: log.isEmpty ? "(empty build log; status \(openCLStatusName(built)))" : log)
            }
            throw LSTMError.openCL(call: "clBuildProgram(\(name))", status: openCLStatusName(built))
        }
        return program
    }

    private func buildFromBinary(_ binary: [UInt8], options: String) throws -> cl_program {
        var status: cl_int = 0, binaryStatus: cl_int = 0
        var id: cl_device_id? = device.id
        var length = binary.count
        let program: cl_program? = binary.withUnsafeBufferPointer { bytes in
            var pointer: UnsafePointer<UInt8>? = bytes.baseAddress
            return clCreateProgramWithBinary(context, 1, &id, &length, &pointer, &binaryStatus, &status)
        }
        guard let program, status == CL_SUCCESS, binaryStatus == CL_SUCCESS else {
            throw LSTMError.openCL(call: "clCreateProgramWithBinary", status: openCLStatusName(status))
        }
        let built = clBuildProgram(program, 1, &id, options, nil, nil)
        guard built == CL_SUCCESS else {
            clReleaseProgram(program)
            throw LSTMError.openCL(call: "clBuildProgram(binary)", status: openCLStatusName(built))
        }
        return program
    }

    private func buildLog(_ program: cl_program) -> String {
        var size = 0
        guard
            clGetProgramBuildInfo(program, device.id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
                == CL_SUCCESS,
            size > 0
        else { return "" }
        var bytes = [CChar](repeating: 0, count: size + 1)
        clGetProgramBuildInfo(program, device.id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil)
        return decodeCString(bytes).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func binary(of program: cl_program) throws -> [UInt8] {
        var size = 0
        try clCheck(
            clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil),
            "clGetProgramInfo(CL_PROGRAM_BINARY_SIZES)")
        guard size > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: size)
        try bytes.withUnsafeMutableBufferPointer { buffer in
            var pointer: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            try clCheck(
                clGetProgramInfo(
                    program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>?>.size,
                    &pointer, nil), "clGetProgramInfo(CL_PROGRAM_BINARIES)")
        }
        return bytes
    }

    /// The kernel `name` of the program `programKey` (built by `program` on first use) with its
    /// work-group limit: created and queried once, then reused.
    func kernel(
        _ name: String, programKey: String, program: () throws -> cl_program
    ) throws -> (kernel: cl_kernel, maxWorkGroup: Int) {
        let key = programKey + "/" + name
        if let entry = kernels[key] { return entry }
        var status: cl_int = 0
        guard let kernel = clCreateKernel(try program(), name, &status), status == CL_SUCCESS else {
            throw LSTMError.openCL(call: "clCreateKernel(\(name))", status: openCLStatusName(status))
        }
        var size = 0
        try clCheck(
            clGetKernelWorkGroupInfo(
                kernel, device.id, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                MemoryLayout<Int>.size, &size, nil), "clGetKernelWorkGroupInfo(\(name))")
        kernels[key] = (kernel, size)
        return (kernel, size)
    }
}
