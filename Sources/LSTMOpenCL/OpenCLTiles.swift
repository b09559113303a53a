@_spi(Backend) import LSTMCore

/// The tile and work-group sizes of the OpenCL kernels: defined here and nowhere else. Every
/// program is built with them as -D options (`buildOptions`); the .cl files refuse to build
/// without them, and the launchers size their grids from the same constants.
enum OpenCLTiles {
    /// gemm_tiled: a GEMM_TILE × GEMM_TILE output tile per work-group, GEMM_WPT × GEMM_WPT
    /// outputs per item (so (GEMM_TILE / GEMM_WPT)² items per group), K in slices of GEMM_K.
    static let gemmTile = 64, gemmItemTile = 4, gemmK = 16
    /// gemm_blocked: outputs per item side (GEMM_BW in gemm.cl; 64 / 8 = 8 items per side).
    static let gemmBlockedWidth = 8
    /// Items per side of a gemm_tiled work-group.
    static var gemmGroupSide: Int { gemmTile / gemmItemTile }
    /// lstm_forward_step: hidden units per work-group, batch rows per item, K per local tile.
    static let stepUnits = 64, stepBatchTile = 4, stepKTile = 32
    /// lstm_forward_step_split: units per work-group, slices of K per unit, batch rows per group.
    static let splitUnits = 32, splitSlices = 8, splitBatchTile = 8
    /// lstm_hidden_backward_split: lanes splitting the sum over units, outputs per group,
    /// batch rows per group (at most the lanes: one lane finishes each row).
    static let backwardLanes = 64, backwardOutputs = 4, backwardBatchTile = 8
    /// Split-K GEMM (gemm_tiled_split): the least K per slice, and the most slices.
    static let splitKMinimum = 256, splitKMaximumSlices = 16
    /// The work-group of the element-wise kernels: this many items along the first dimension.
    static let elementGroup = 64
    /// reduce_sum: items per work-group (a power of two).
    static let reduceGroup = 256
    /// softmax_xent_group: items per row (a power of two), used from `softmaxGroupClasses` classes.
    static let softmaxGroup = 64, softmaxGroupClasses = 128

    static let buildOptions =
        "-cl-std=CL1.2 -DGEMM_TILE=\(gemmTile) -DGEMM_WPT=\(gemmItemTile) -DGEMM_K=\(gemmK)"
        + " -DLSTM_UNITS=\(stepUnits) -DLSTM_BT=\(stepBatchTile) -DLSTM_KT=\(stepKTile) -DREDUCE_GROUP=\(reduceGroup)"
        + " -DSOFTMAX_GROUP=\(softmaxGroup)"
        + " -DLSTM_SU=\(splitUnits) -DLSTM_SK=\(splitSlices) -DLSTM_SB=\(splitBatchTile)"
        + " -DLSTM_BJ=\(backwardLanes) -DLSTM_BO=\(backwardOutputs) -DLSTM_BB=\(backwardBatchTile)"
}
