import TwinCore

/// node_exporter's powersupplyclass collector (`/sys/class/power_supply`): batteries and mains
/// adapters. Numbers in the kernel's micro-units become volts, amperes, watts, watt-hours and
/// ampere-hours; the text attributes become the labels of `node_power_supply_info`.
public final class PowerSupplyCollector: Collector {
    public let name = "powersupplyclass"
    /// sysfs file → (metric suffix, divisor).
    static let numbers: [(file: String, metric: String, divisor: Double)] = [
        ("authentic", "authentic", 1), ("calibrate", "calibrate", 1), ("capacity", "capacity", 1),
        ("capacity_alert_max", "capacity_alert_max", 1), ("capacity_alert_min", "capacity_alert_min", 1),
        ("cycle_count", "cyclecount", 1), ("online", "online", 1), ("present", "present", 1),
        ("time_to_empty_now", "time_to_empty_seconds", 1), ("time_to_full_now", "time_to_full_seconds", 1),
        ("current_boot", "current_boot", 1e6), ("current_max", "current_max", 1e6), ("current_now", "current_ampere", 1e6),
        ("energy_empty", "energy_empty", 1e6), ("energy_empty_design", "energy_empty_design", 1e6),
        ("energy_full", "energy_full", 1e6), ("energy_full_design", "energy_full_design", 1e6), ("energy_now", "energy_watthour", 1e6),
        ("voltage_boot", "voltage_boot", 1e6), ("voltage_max", "voltage_max", 1e6), ("voltage_max_design", "voltage_max_design", 1e6),
        ("voltage_min", "voltage_min", 1e6), ("voltage_min_design", "voltage_min_design", 1e6), ("voltage_now", "voltage_volt", 1e6),
        ("voltage_ocv", "voltage_ocv", 1e6), ("charge_control_limit", "charge_control_limit", 1),
        ("charge_control_limit_max", "charge_control_limit_max", 1), ("charge_counter", "charge_counter", 1e6),
        ("charge_empty", "charge_empty", 1e6), ("charge_empty_design", "charge_empty_design", 1e6),
        ("charge_full", "charge_full", 1e6), ("charge_full_design", "charge_full_design", 1e6), ("charge_now", "charge_ampere", 1e6),
        ("charge_term_current", "charge_term_current", 1e6), ("constant_charge_current", "constant_charge_current", 1e6),
        ("constant_charge_current_max", "constant_charge_current_max", 1e6), ("constant_charge_voltage", "constant_charge_voltage", 1e6),
        ("constant_charge_voltage_max", "constant_charge_voltage_max", 1e6), ("precharge_current", "precharge_current", 1e6),
        ("input_current_limit", "input_current_limit", 1e6), ("power_now", "power_watt", 1e6),
        ("temp", "temp_celsius", 10), ("temp_alert_max", "temp_alert_max_celsius", 10), ("temp_alert_min", "temp_alert_min_celsius", 10),
        ("temp_ambient", "temp_ambient_celsius", 10), ("temp_ambient_max", "temp_ambient_max_celsius", 10),
        ("temp_ambient_min", "temp_ambient_min_celsius", 10), ("temp_max", "temp_max_celsius", 10), ("temp_min", "temp_min_celsius", 10),
    ]
    /// sysfs files whose text becomes a label of `node_power_supply_info`.
    static let texts = ["capacity_level", "health", "manufacturer", "model_name", "scope", "serial_number", "status",
                        "technology", "type", "usb_type"]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("class/power_supply")
        guard let supplies = ctx.entries(base), !supplies.isEmpty else { return .noData("no /sys/class/power_supply entries") }
        for supply in supplies {
            let dir = base + "/" + supply + "/"
            // One directory read, then only the files this supply has (a battery has a dozen of the fifty).
            let present = Set(ctx.reader.list(dir) ?? [])
            let l = Labels(["power_supply": supply])
            for n in Self.numbers where present.contains(n.file) {
                if let v = ctx.number(dir + n.file) { ctx.observation.add("node_power_supply_" + n.metric, l, v / n.divisor) }
            }
            var info = ["power_supply": supply]
            for t in Self.texts where present.contains(t) { if let v = ctx.text(dir + t), !v.isEmpty { info[t] = v } }
            ctx.observation.add("node_power_supply_info", Labels(dictionary: info), 1)
        }
        return .ok
    }
}
