import Foundation
import LSTMKit
import SwiftProtobuf

// Following values through the shape-only glue between LSTM nodes, and checking each link.

extension GraphReader {
    /// Follows `name` up through shape-only operators to the LSTM output it comes from, if any.
    func trace(_ name: String) -> Trace {
        var trace = Trace()
        var current = name
        while let producer = producers[current] {
            let index = producer.node
            let node = nodes[index]
            if isLSTM(node) {
                trace.lstm = (index, producer.output)
                return trace
            }
            guard isDefaultDomain(node.domain), shapeOnlyOperators.contains(node.opType), let next = node.input.first,
                !next.isEmpty, trace.nodes.count < nodes.count
            else { return trace }
            trace.nodes.append(index)
            if node.opType == "Transpose" {
                let perm = node.attribute.first { $0.name == "perm" }.map { $0.ints.map(Int.init) }
                trace.transposes.append((index, perm))
            }
            current = next
        }
        return trace
    }

    /// Checks that a layer's X is the previous layer's Y made [T, B, D·H] ([B, T, D·H] with
    /// layout 1): Y [T, D, B, H] needs a Transpose [0, 2, 1, 3] when D = 2 (optional for D = 1);
    /// with layout 1 Y is [B, T, D, H] already in order.
    func checkLink(_ trace: Trace, to layer: LayerNode, directions: Int) throws {
        let glue = [0, 2, 1, 3]
        let ok: Bool
        if layer.layout == 1 {
            ok = trace.transposes.isEmpty
        } else {
            ok =
                trace.transposes.allSatisfy { $0.perm == glue } && trace.transposes.count <= 1
                && (directions == 1 || trace.transposes.count == 1)
        }
        guard ok else {
            let found =
                trace.transposes.isEmpty
                ? "no Transpose"
                : trace.transposes.map { "Transpose \(label($0.node)) perm \($0.perm.map { "\($0)" } ?? "(none)")" }
                    .joined(separator: ", ")
            let wanted =
                layer.layout == 1
                ? "no Transpose (layout 1: Y is [B, T, D, H])"
                : (directions == 2 ? "one Transpose perm [0, 2, 1, 3]" : "no Transpose or one with perm [0, 2, 1, 3]")
            throw unsupported(
                layer.index,
                "input X is the previous layer's Y rearranged by \(found); a stacked layer's input [T, B, D·H] needs "
                    + wanted)
        }
    }

    /// Whether the model reads batch-first input: layout 1, or a Transpose [1, 0, 2] of the
    /// input before layer 0 (how torch.onnx.export writes a batch_first LSTM).
    func inputLayout(_ trace: Trace, _ layer: LayerNode) throws -> Bool {
        if trace.transposes.isEmpty { return layer.layout == 1 }
        if layer.layout == 0, trace.transposes.count == 1, trace.transposes[0].perm == [1, 0, 2] { return true }
        let found = trace.transposes.map { "Transpose \(label($0.node)) perm \($0.perm.map { "\($0)" } ?? "(none)")" }
            .joined(separator: ", ")
        throw unsupported(
            layer.index,
            "input X is rearranged by \(found); lstm-gpu reads X as it is, or batch-first through one Transpose "
                + "perm [1, 0, 2] (with layout 0)")
    }
}
