import COpenCL
import Foundation
@_spi(Backend) import LSTMCore

/// What `lstm-gpu devices` shows about one OpenCL device.
/// (`@unchecked Sendable`: OpenCL device and platform ids are process-wide handles, safe to share.)
public struct OpenCLDeviceInfo: @unchecked Sendable, CustomStringConvertible {
    /// Position in the enumeration over all platforms (what `--device INDEX` means).
    public let index: Int
    public let name: String
    public let vendor: String
    public let platform: String
    /// "GPU", "CPU", "accelerator" or "other".
    public let type: String
    public let version: String
    public let driverVersion: String
    public let computeUnits: Int
    public let globalMemory: Int
    public let maxAllocation: Int
    public let localMemory: Int
    public let maxWorkGroupSize: Int
    public let fp16: Bool
    public let fp64: Bool
    let id: cl_device_id

    public var description: String {
        "[\(index)] \(name) (\(vendor), \(type), \(version), driver \(driverVersion)) on \(platform): "
            + "\(computeUnits) compute units, \(formatBytes(globalMemory)) global memory (max allocation "
            + "\(formatBytes(maxAllocation))), \(formatBytes(localMemory)) local memory, max work-group "
            + "\(maxWorkGroupSize), "
            + "fp16 \(fp16 ? "yes" : "no"), fp64 \(fp64 ? "yes" : "no")"
    }
}

/// Enumerating and choosing OpenCL devices.
public enum OpenCLDevices {
    /// Every device of every platform, in platform order. Empty (not an error) when no
    /// OpenCL platform is installed.
    public static func all() throws -> [OpenCLDeviceInfo] {
        var platformCount: cl_uint = 0
        let status = clGetPlatformIDs(0, nil, &platformCount)
        if status == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: no ICD installed */ || platformCount == 0 { return [] }
        try clCheck(status, "clGetPlatformIDs")
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        try clCheck(clGetPlatformIDs(platformCount, &platforms, nil), "clGetPlatformIDs")
        var devices: [OpenCLDeviceInfo] = []
        for case let platform? in platforms {
            var count: cl_uint = 0
            let found = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &count)
            if found == CL_DEVICE_NOT_FOUND || count == 0 { continue }
            try clCheck(found, "clGetDeviceIDs")
            var ids = [cl_device_id?](repeating: nil, count: Int(count))
            try clCheck(
                clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), count, &ids, nil), "clGetDeviceIDs")
            let platformName = try platformString(platform, cl_platform_info(CL_PLATFORM_NAME))
            for case let id? in ids {
                devices.append(try info(id, platform: platform, platformName: platformName, index: devices.count))
            }
        }
        return devices
    }

    /// Picks a device: `spec` (or `LSTM_GPU_DEVICE` when nil) is an index into `all()` or a
    /// case-insensitive substring of the name; without either, the first GPU, else the first device.
    public static func select(_ spec: String? = nil) throws -> OpenCLDeviceInfo {
        let devices = try all()
        guard !devices.isEmpty else {
            throw LSTMError.noDevice(
                "no OpenCL platform or device found (install an OpenCL driver, e.g. pocl-opencl-icd)")
        }
        let wanted = spec ?? ProcessInfo.processInfo.environment["LSTM_GPU_DEVICE"]
        let listing = devices.map { "[\($0.index)] \($0.name)" }.joined(separator: ", ")
        guard let wanted, !wanted.isEmpty else { return devices.first { $0.type == "GPU" } ?? devices[0] }
        if let index = Int(wanted) {
            guard devices.indices.contains(index) else {
                throw LSTMError.noDevice("device index \(index) does not exist; available: \(listing)")
            }
            return devices[index]
        }
        guard let match = devices.first(where: { $0.name.lowercased().contains(wanted.lowercased()) }) else {
            throw LSTMError.noDevice("no device name contains '\(wanted)'; available: \(listing)")
        }
        return match
    }

    static func info(
        _ id: cl_device_id, platform: cl_platform_id, platformName: String, index: Int
    ) throws -> OpenCLDeviceInfo {
        let typeBits: cl_device_type = try deviceValue(id, CL_DEVICE_TYPE)
        let type =
            typeBits & cl_device_type(CL_DEVICE_TYPE_GPU) != 0
            ? "GPU"
            : typeBits & cl_device_type(CL_DEVICE_TYPE_CPU) != 0
                ? "CPU"
                : typeBits & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 ? "accelerator" : "other"
        let extensions = try deviceString(id, CL_DEVICE_EXTENSIONS)
        let units: cl_uint = try deviceValue(id, CL_DEVICE_MAX_COMPUTE_UNITS)
        let global: cl_ulong = try deviceValue(id, CL_DEVICE_GLOBAL_MEM_SIZE)
        let maxAlloc: cl_ulong = try deviceValue(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE)
        let local: cl_ulong = try deviceValue(id, CL_DEVICE_LOCAL_MEM_SIZE)
        let group: Int = try deviceValue(id, CL_DEVICE_MAX_WORK_GROUP_SIZE)
        return OpenCLDeviceInfo(
            index: index, name: try deviceString(id, CL_DEVICE_NAME).trimmingCharacters(in: .whitespaces),
            vendor: try deviceString(id, CL_DEVICE_VENDOR), platform: platformName, type: type,
            version: try deviceString(id, CL_DEVICE_VERSION), driverVersion: try deviceString(id, CL_DRIVER_VERSION),
            computeUnits: Int(units), globalMemory: Int(global), maxAllocation: Int(maxAlloc), localMemory: Int(local),
            maxWorkGroupSize: group, fp16: extensions.contains("cl_khr_fp16"), fp64: extensions.contains("cl_khr_fp64"),
            id: id)
    }

    static func deviceValue<T>(_ id: cl_device_id, _ param: Int32) throws -> T {
        let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
        defer { pointer.deallocate() }
        try clCheck(
            clGetDeviceInfo(id, cl_device_info(param), MemoryLayout<T>.size, pointer, nil), "clGetDeviceInfo(\(param))")
        return pointer.pointee
    }

    static func deviceString(_ id: cl_device_id, _ param: Int32) throws -> String {
        var size = 0
        try clCheck(clGetDeviceInfo(id, cl_device_info(param), 0, nil, &size), "clGetDeviceInfo(\(param))")
        var bytes = [CChar](repeating: 0, count: size + 1)
        try clCheck(clGetDeviceInfo(id, cl_device_info(param), size, &bytes, nil), "clGetDeviceInfo(\(param))")
        return decodeCString(bytes)
    }

    static func platformString(_ id: cl_platform_id, _ param: cl_platform_info) throws -> String {
        var size = 0
        try clCheck(clGetPlatformInfo(id, param, 0, nil, &size), "clGetPlatformInfo")
        var bytes = [CChar](repeating: 0, count: size + 1)
        try clCheck(clGetPlatformInfo(id, param, size, &bytes, nil), "clGetPlatformInfo")
        return decodeCString(bytes)
    }
}
