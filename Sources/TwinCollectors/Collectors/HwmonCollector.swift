import Glibc
import TwinCore

/// Hardware sensors from `/sys/class/hwmon` (temperatures, voltages, fans, power, current), named as
/// node_exporter names them: chip from the device path (`platform_coretemp_0`), else the `name` file,
/// else `hwmonN`; sensor `temp1`, `fan2`, ...; `node_hwmon_<type>_<unit>` per property. Absent on most
/// VMs ("no data").
public final class HwmonCollector: Collector {
    public let name = "hwmon"
    static let sensorTypes: Set<String> = ["vrm", "beep_enable", "update_interval", "in", "cpu", "fan", "pwm", "temp",
                                           "curr", "power", "energy", "humidity", "intrusion", "freq"]
    public init() {}

    public func collect(_ ctx: inout CollectContext) throws -> CollectOutcome {
        let base = ctx.paths.sys("class/hwmon")
        guard let entries = ctx.reader.list(base), !entries.isEmpty else { return .noData("no /sys/class/hwmon (no hardware sensors exposed)") }
        func readTrimmed(_ p: String) -> String? {
            ctx.reader.read(p).map { s in String(s.drop { $0 == "\n" }.reversed().drop { $0 == "\n" }.reversed()) }
        }
        // Chips: several hwmon directories may hang off one device (a wifi card's three radios); node_exporter
        // then appends the chip's own name so each stays distinct.
        var chips: [(dir: String, chip: String, name: String?)] = []
        for entry in entries.sorted() {
            let dir = base + "/" + entry
            guard let st = ctx.reader.status(dir), (st.st_mode & S_IFMT) == S_IFDIR else { continue }
            let name = readTrimmed(dir + "/name").map(cleanHwmonName).flatMap { $0.isEmpty ? nil : $0 }
            chips.append((dir, chipName(dir, ctx.reader), name))
        }
        var uses: [String: Int] = [:]
        for c in chips { uses[c.chip, default: 0] += 1 }
        var any = false
        for (dir, baseChip, chipLabel) in chips {
            let chip = (uses[baseChip] ?? 0) > 1 && chipLabel != nil ? baseChip + "_" + chipLabel! : baseChip
            var data: [String: [String: String]] = [:]
            for d in [dir, dir + "/device"] {
                for file in ctx.reader.list(d) ?? [] {
                    guard let (type, num, prop) = explodeHwmonFilename(file), Self.sensorTypes.contains(type),
                          let value = readTrimmed(d + "/" + file) else { continue }
                    data[type + String(num), default: [:]][prop] = value
                }
            }
            if !data.isEmpty, let chipLabel {
                ctx.observation.add("node_hwmon_chip_names", Labels(["chip": chip, "chip_name": chipLabel]), 1)
            }
            for (sensor, props) in data.sorted(by: { $0.key < $1.key }) {
                guard let (type, _, _) = explodeHwmonFilename(sensor) else { continue }
                any = true
                emit(&ctx.observation, chip: chip, sensor: sensor, type: type, props: props)
            }
        }
        return any ? .ok : .noData("no hwmon sensors readable")
    }

    private func emit(_ obs: inout Observation, chip: String, sensor: String, type: String, props: [String: String]) {
        let labels = Labels(["chip": chip, "sensor": sensor])
        if let label = props["label"], !label.isEmpty {
            obs.add("node_hwmon_sensor_label", Labels(["chip": chip, "sensor": sensor, "label": label]), 1)
        }
        switch type {
        case "beep_enable":
            obs.add("node_hwmon_beep_enabled", labels, props[""] == "1" ? 1 : 0)
            return
        case "vrm":
            if let v = props[""].flatMap(Double.init) { obs.add("node_hwmon_voltage_regulator_version", labels, v) }
            return
        case "freq":
            // Frequencies are labelled by their label when they have one (`sclk`), in MHz.
            let l = props["label"].flatMap { $0.isEmpty ? nil : $0 }.map { Labels(["chip": chip, "sensor": $0]) } ?? labels
            if let v = props["input"].flatMap(Double.init) { obs.add("node_hwmon_freq_freq_mhz", l, v / 1_000_000) }
            return
        case "update_interval":
            if let v = props[""].flatMap(Double.init) { obs.add("node_hwmon_update_interval_seconds", labels, v * 0.001) }
            return
        default: break
        }
        let prefix = "node_hwmon_" + type
        for (element, raw) in props where element != "label" {
            guard let v = Double(raw) else { continue }
            var name = prefix
            if element == "input" {
                if props[""] != nil { name += "_input" }
            } else if !element.isEmpty {
                name += "_" + cleanHwmonName(element)
            }
            if element == "fault" || element == "alarm" { obs.add(name, labels, v); continue }
            if element == "beep" { obs.add(name + "_enabled", labels, v); continue }
            switch type {
            case "in", "cpu": obs.add(name + "_volts", labels, v * 0.001)
            case "temp" where element != "type": obs.add(name + "_celsius", labels, v * 0.001)
            case "curr": obs.add(name + "_amps", labels, v * 0.001)
            case "energy": obs.counter(name + "_joule_total", labels, v / 1_000_000)
            case "power" where element == "accuracy": obs.add(name, labels, v / 1_000_000)
            case "power" where element.hasPrefix("average_interval"): obs.add(name + "_seconds", labels, v * 0.001)
            case "power": obs.add(name + "_watt", labels, v / 1_000_000)
            case "humidity": obs.add(name, labels, v / 1_000_000)
            case "fan" where ["input", "min", "max", "target"].contains(element): obs.add(name + "_rpm", labels, v)
            default: obs.add(name, labels, v)
            }
        }
    }

    /// node_exporter's chip naming: `<device type>_<device name>` from the resolved `device` link, else the
    /// `name` file, else the directory's own name.
    private func chipName(_ dir: String, _ reader: FileReader) -> String {
        if let device = realPath(dir + "/device") {
            let parts = device.split(separator: "/")
            let devName = cleanHwmonName(String(parts.last ?? ""))
            let devType = parts.count >= 2 ? cleanHwmonName(String(parts[parts.count - 2])) : ""
            if !devType.isEmpty && !devName.isEmpty { return devType + "_" + devName }
            if !devName.isEmpty { return devName }
        }
        if let raw = reader.read(dir + "/name") {
            let clean = cleanHwmonName(raw)
            if !clean.isEmpty { return clean }
        }
        return cleanHwmonName(String((realPath(dir) ?? dir).split(separator: "/").last ?? ""))
    }

    private func realPath(_ p: String) -> String? {
        guard let r = realpath(p, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }
}

/// Lower case, every character outside `[a-z0-9:_]` replaced by `_`, leading and trailing `_` trimmed.
func cleanHwmonName(_ s: String) -> String {
    let mapped = s.lowercased().unicodeScalars.map { c -> Character in
        (c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == ":" || c == "_" ? Character(c) : "_"
    }
    return String(String(mapped).drop { $0 == "_" }.reversed().drop { $0 == "_" }.reversed())
}

/// Splits a sensor file name `<type><number>_<property>` (`temp1_input` → ("temp", 1, "input"),
/// `pwm1` → ("pwm", 1, ""), `beep_enable` → ("beep_enable", 0, "")); nil when it does not have that shape.
func explodeHwmonFilename(_ name: String) -> (String, Int, String)? {
    guard let firstDigit = name.firstIndex(where: \.isASCIIDigit) else {
        return name.isEmpty ? nil : (name, 0, "")
    }
    guard firstDigit > name.startIndex else { return nil }
    let type = String(name[..<firstDigit])
    let afterDigits = name[firstDigit...].firstIndex { !$0.isASCIIDigit } ?? name.endIndex
    guard let num = Int(name[firstDigit..<afterDigits]) else { return nil }
    let rest = name[afterDigits...]
    if rest.isEmpty { return (type, num, "") }
    guard rest.first == "_", rest.count > 1 else { return nil }
    return (type, num, String(rest.dropFirst()))
}
