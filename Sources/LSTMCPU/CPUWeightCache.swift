import CLSTMKernels
@_spi(Backend) import LSTMCore

/// The CPU path's derived weights (regrouped into `GateLayout` order, packed in panels for
/// `lstm_gemm_packed`): made on first use and cached on the weight buffer until its contents
/// change (`CPUBuffer.version`), so a forward after an optimiser step sees the new weights and
/// repeated forwards pack nothing.
extension CPUBackend {
    /// A copy derived from `weights` by `make`, cached on the buffer until its contents change.
    func derived(
        _ weights: CPUBuffer, _ kind: String, count: Int, _ make: (UnsafeMutablePointer<Float>) -> Void
    ) -> CPUBuffer {
        if let cached = weights.derived[kind], cached.version == weights.version { return cached.buffer }
        let buffer = CPUBuffer(count: count)
        make(buffer.pointer)
        weights.derived[kind] = (weights.version, buffer)
        return buffer
    }

    /// `weights` [4H, width] with its rows in `GateLayout` order.
    func regrouped(_ weights: CPUBuffer, layout: GateLayout, width: Int) -> CPUBuffer {
        derived(weights, "regrouped", count: 4 * layout.hiddenSize * width) {
            layout.regroupRows(weights.pointer, into: $0, width: width)
        }
    }

    /// `weights` [4H, width] regrouped, packed in panels of 16 rows for `lstm_gemm_packed`
    /// (C += A · regroupedᵀ).
    func packedRegrouped(_ weights: CPUBuffer, layout: GateLayout, width: Int) -> CPUBuffer {
        let rows = 4 * layout.hiddenSize
        let source = regrouped(weights, layout: layout, width: width)
        return derived(weights, "packed", count: lstm_packed_size(Int32(rows), Int32(width))) {
            lstm_pack_rows(source.pointer, Int32(rows), Int32(width), Int32(width), $0)
        }
    }

    /// `weights` [4H, width] regrouped and transposed to [width, 4H], packed in panels of 16
    /// rows (C += A · regrouped, for the backward's dG · W_hh).
    func packedRegroupedTransposed(_ weights: CPUBuffer, layout: GateLayout, width: Int) -> CPUBuffer {
        let rows = 4 * layout.hiddenSize
        let source = regrouped(weights, layout: layout, width: width)
        return derived(weights, "packed-transposed", count: lstm_packed_size(Int32(width), Int32(rows))) {
            lstm_pack_columns(source.pointer, Int32(rows), Int32(width), Int32(width), $0)
        }
    }

    /// `weights` [rows, width] as they are (PyTorch's gate order, the options path), packed in
    /// panels of 16 rows for `lstm_gemm_packed` (C += A · weightsᵀ).
    func packed(_ weights: CPUBuffer, rows: Int, width: Int) -> CPUBuffer {
        derived(weights, "packed-plain", count: lstm_packed_size(Int32(rows), Int32(width))) {
            lstm_pack_rows(weights.pointer, Int32(rows), Int32(width), Int32(width), $0)
        }
    }

    /// `weights` [rows, width] transposed to [width, rows] and packed (C += A · weights, the
    /// options path's dG · W_hh).
    func packedTransposed(_ weights: CPUBuffer, rows: Int, width: Int) -> CPUBuffer {
        derived(weights, "packed-plain-transposed", count: lstm_packed_size(Int32(width), Int32(rows))) {
            lstm_pack_columns(weights.pointer, Int32(rows), Int32(width), Int32(width), $0)
        }
    }
}
