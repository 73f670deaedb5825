import TwinCore
import TwinServer

/// A tick the store has committed, as ``CollectionService`` hands it on.
public struct CommittedTick: Sendable {
    /// The tick's time (ms since the epoch, on the interval grid).
    public var time: Int64
    /// What the collectors saw, after the data policy (hashes and drops) was applied.
    public var observation: Observation
    /// The state changes the tick brought, with values readers may see (sensitive ones masked).
    public var events: [TwinEvent]
    /// The latest health line of every collector, sorted by collector.
    public var health: [CollectorHealth]
}

/// Receives every tick after the store committed it: the live twin, later the uplink of an agent.
///
/// Called on the collection thread, one tick at a time and in time order; a sink must return quickly
/// (hand work to its own task or thread) since the next tick waits for it.
public protocol TickSink: Sendable {
    func committed(_ tick: CommittedTick)
    /// The collection loop stopped; no more ticks come.
    func collectionStopped()
}

extension LiveTwin: TickSink {
    public func committed(_ tick: CommittedTick) {
        update(samples: tick.observation.samples, types: tick.observation.types, host: tick.observation.entities[.host]?.first?.attributes,
               health: tick.health, tick: tick.time, events: tick.events)
    }

    public func collectionStopped() { close() }
}
