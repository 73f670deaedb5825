import CZlib
import Foundation

/// A NAB (Numenta Anomaly Benchmark) corpus: data files (`timestamp,value` CSV) and their labelled
/// anomaly windows, as laid out in `../shared/data/nab` (data/, labels/combined_windows.json).
public struct NABCorpus: Sendable {
    /// One data file: its rows and its windows as row ranges.
    public struct File: Sendable {
        /// The name as in the labels, e.g. `realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv`.
        public var name: String
        /// Seconds since the epoch (UTC).
        public var timestamps: [Int64]
        public var values: [Double]
        /// Windows as closed row ranges `[first, last]`.
        public var windows: [ClosedRange<Int>]
        /// The category: the name's folder, e.g. `realAWSCloudwatch`.
        public var category: Substring { name.split(separator: "/").first ?? "" }
    }

    public var files: [File]

    public init(files: [File]) { self.files = files }

    /// The categories under `root`/data, in name order.
    public static func categories(root: String) throws -> [String] {
        let dir = root + "/data"
        var isDir: ObjCBool = false
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter {
            FileManager.default.fileExists(atPath: dir + "/" + $0, isDirectory: &isDir) && isDir.boolValue
        }
        guard !names.isEmpty else { throw NABError("no categories under \(dir)") }
        return names.sorted()
    }

    /// Every file of every category under `root`, categories in name order.
    public static func loadAll(root: String) throws -> NABCorpus {
        NABCorpus(files: try categories(root: root).flatMap { try load(root: root, category: $0).files })
    }

    /// Total labelled windows (the normalisation's N).
    public var windowCount: Int { files.reduce(0) { $0 + $1.windows.count } }

    /// Loads every file of `category` (e.g. `realAWSCloudwatch`) under `root` (the folder holding
    /// data/ and labels/).
    public static func load(root: String, category: String) throws -> NABCorpus {
        let labelsPath = root + "/labels/combined_windows.json"
        guard let labelData = FileManager.default.contents(atPath: labelsPath),
              let labels = try JSONSerialization.jsonObject(with: labelData) as? [String: [[String]]] else {
            throw NABError("cannot read the windows in \(labelsPath)")
        }
        let dir = root + "/data/" + category
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".csv") }.sorted()
        guard !names.isEmpty else { throw NABError("no CSV files in \(dir)") }
        var files: [File] = []
        for n in names {
            let name = category + "/" + n
            let rows = try readCSV(dir + "/" + n)
            var windows: [ClosedRange<Int>] = []
            let index = Dictionary(rows.t.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            for w in labels[name] ?? [] {
                guard w.count == 2, let a = parseTime(w[0]), let b = parseTime(w[1]), let i = index[a], let j = index[b], i <= j else {
                    throw NABError("window \(w) of \(name) does not match rows of the file")
                }
                windows.append(i...j)
            }
            files.append(File(name: name, timestamps: rows.t, values: rows.v, windows: windows))
        }
        return NABCorpus(files: files)
    }

    /// Reads a `timestamp,value` CSV (NAB's format; a header line is skipped).
    public static func readCSV(_ path: String) throws -> (t: [Int64], v: [Double]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw NABError("cannot read \(path)") }
        var t: [Int64] = [], v: [Double] = []
        for (i, line) in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).enumerated() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count >= 2, let ts = parseTime(f[0]), let x = Double(f[1].trimmingCharacters(in: .whitespaces)) else {
                if i == 0 { continue } // header
                throw NABError("\(path) line \(i + 1): expected `timestamp,value`, got \"\(line.prefix(80))\"")
            }
            t.append(ts)
            v.append(x)
        }
        return (t, v)
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC) or Unix seconds, to Unix seconds.
    public static func parseTime<S: StringProtocol>(_ s: S) -> Int64? {
        let text = s.trimmingCharacters(in: .whitespaces)
        if let secs = Int64(text) { return secs }
        let b = Array(text.utf8)
        guard b.count >= 19, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":") else { return nil }
        func num(_ r: Range<Int>) -> Int64? {
            var v: Int64 = 0
            for i in r { guard b[i] >= 48, b[i] <= 57 else { return nil }; v = v * 10 + Int64(b[i] - 48) }
            return v
        }
        guard let y = num(0..<4), let mo = num(5..<7), let d = num(8..<10), let h = num(11..<13), let mi = num(14..<16), let sec = num(17..<19),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, sec < 61 else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm).
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + h * 3600 + mi * 60 + sec
    }

    /// The contents of a gzip file.
    public static func gunzip(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw NABError("cannot read \(path)") }
        var input = [UInt8](data)
        var out: [UInt8] = []
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { throw NABError("zlib init failed") }
        defer { inflateEnd(&stream) }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let rc: Int32 = input.withUnsafeMutableBufferPointer { inp in
            stream.next_in = inp.baseAddress
            stream.avail_in = UInt32(inp.count)
            while true {
                let r: Int32 = chunk.withUnsafeMutableBufferPointer { c in
                    stream.next_out = c.baseAddress
                    stream.avail_out = UInt32(c.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                out += chunk[0..<(chunk.count - Int(stream.avail_out))]
                if r != Z_OK { return r }
            }
        }
        guard rc == Z_STREAM_END else { throw NABError("\(path) is not valid gzip (zlib error \(rc))") }
        return out
    }
}

/// A problem with NAB data files.
public struct NABError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
