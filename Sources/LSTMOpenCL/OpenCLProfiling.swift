// OpenCLProfiling.swift: what a profiled run measured (`bench --profile`): the work each
// launch declares (KernelWork), and per kernel its launches, device time and work, with the
// device's idle time between launches, read from the queue's events (RuntimeProfile).

import COpenCL
@_spi(Backend) import LSTMCore

extension OpenCLRuntime {
    /// What the profiling events since the last call recorded (waits for the queue): per
    /// kernel name its launches, device nanoseconds and declared work; and the device's idle
    /// time between the first launch's start and the last one's end (gaps in which no kernel
    /// of this queue ran: host enqueue cost and launch latency). Empty unless `profiling`.
    func takeProfile() throws -> RuntimeProfile {
        let taken = events
        events = []
        defer { for entry in taken { clReleaseEvent(entry.event) } }
        try finish()
        var profile = RuntimeProfile()
        var spans: [(start: cl_ulong, end: cl_ulong)] = []
        for (name, event, work) in taken {
            var start: cl_ulong = 0, end: cl_ulong = 0
            try clCheck(
                clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil),
                "clGetEventProfilingInfo(\(name))")
            try clCheck(
                clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil),
                "clGetEventProfilingInfo(\(name))")
            var entry = profile.kernels[name] ?? RuntimeProfile.Entry()
            entry.launches += 1
            entry.nanoseconds += end > start ? end - start : 0
            if let work {
                entry.flops += work.flops
                entry.bytes += work.bytes
            } else {
                entry.undeclared = true
            }
            profile.kernels[name] = entry
            spans.append((start, max(start, end)))
        }
        spans.sort { $0.start < $1.start }
        var covered = spans.first?.end ?? 0
        for span in spans.dropFirst() {
            if span.start > covered { profile.idleNanoseconds += span.start - covered }
            covered = max(covered, span.end)
        }
        return profile
    }
}

/// The arithmetic and the least memory traffic of one kernel launch, declared by its launcher
/// (for `bench --profile`'s GFLOP/s and GB/s): FLOPs, and bytes that must cross between the
/// device's memory and its compute units (every input read once, every output written once).
struct KernelWork {
    var flops: Double
    var bytes: Double
}

/// `OpenCLRuntime.takeProfile`'s result.
struct RuntimeProfile {
    struct Entry {
        var launches = 0
        var nanoseconds: UInt64 = 0
        var flops = 0.0
        var bytes = 0.0
        /// Whether a launch declared no work (then no rates are derived).
        var undeclared = false
    }
    var kernels: [String: Entry] = [:]
    var idleNanoseconds: UInt64 = 0
}
