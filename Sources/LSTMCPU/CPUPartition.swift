import CLSTMKernels
@_spi(Backend) import LSTMCore

/// How the CPU path shares a direction's work among its threads: how many threads a shape
/// gets, which blocks of units and which output panels each thread owns, and how independent
/// directions split the team.
extension CPUBackend {
    /// Threads a layer of `directions` directions of this shape runs on.
    public func threads(hiddenSize: Int, outputSize: Int, batch: Int, directions: Int = 1) -> Int {
        guard adaptsThreads else { return team.size }
        let jobs = max(1, directions)
        let perJob = CPUThreads.threads(
            hiddenSize: hiddenSize, outputSize: outputSize, batch: batch,
            limit: max(1, team.size / jobs))
        return min(team.size, perJob * jobs)
    }

    /// The team for these independent directions (all of `team` unless they are small).
    func team(for shapes: [DirectionShape]) -> WorkerTeam {
        guard adaptsThreads,
            let widest = shapes.max(by: {
                $0.batch * $0.hiddenSize * $0.outputSize < $1.batch * $1.hiddenSize * $1.outputSize
            })
        else { return team }
        let size = threads(
            hiddenSize: widest.hiddenSize, outputSize: widest.outputSize, batch: widest.batch,
            directions: shapes.count)
        return size == team.size ? team : WorkerTeam.shared(size: size)
    }

    /// A thread's blocks of units: whole pairs of blocks, so that its units start at a multiple
    /// of 2·LSTM_GATE_BLOCK (= LSTM_PANEL_ROWS) and its gate columns at a panel boundary.
    func blocks(_ layout: GateLayout, _ crew: Crew) -> Range<Int> {
        let pairs = crew.share((layout.blockCount + 1) / 2)
        return min(2 * pairs.lowerBound, layout.blockCount)..<min(2 * pairs.upperBound, layout.blockCount)
    }

    /// A thread's share of `count` outputs in whole panels (`LSTM_PANEL_ROWS` of the C kernels).
    func panelShare(_ count: Int, _ crew: Crew) -> Range<Int> {
        let panel = Int(LSTM_PANEL_ROWS)
        let panels = crew.share((count + panel - 1) / panel)
        return min(panel * panels.lowerBound, count)..<min(panel * panels.upperBound, count)
    }

    /// Runs `bodies` (independent jobs, e.g. the two directions of a layer) on the team: with
    /// at least as many threads as jobs, each job gets its own group of threads.
    func runIndependent(_ bodies: [(Crew) -> Void], on team: WorkerTeam) {
        let groups = min(bodies.count, team.size)
        team.run(groups: groups) { group, crew in
            for (index, body) in bodies.enumerated() where index % groups == group { body(crew) }
        }
    }
}
