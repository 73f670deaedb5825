/// The browser dashboard's files, compiled into the binary: one HTML page for every dashboard route
/// (the page reads its state from the URL), a style sheet and two JavaScript modules. Every request the
/// page makes goes to the public HTTP API.
public enum Dashboard {
    /// One file to serve.
    public struct Asset: Sendable {
        public let bytes: [UInt8]
        public let contentType: String
        /// A strong validator of the content (FNV-1a of the bytes), for `ETag`.
        public let etag: String

        init(_ bytes: [UInt8], _ contentType: String) {
            self.bytes = bytes
            self.contentType = contentType
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            etag = "\"\(String(h, radix: 16))\""
        }
    }

    /// Paths that show the page (the script picks the view from the path).
    public static let pages: Set<String> = ["/", "/host", "/forecast", "/alerts"]

    private static let assets: [String: Asset] = [
        "/assets/app.css": Asset(PackageResources.app_css, "text/css; charset=utf-8"),
        "/assets/app.js": Asset(PackageResources.app_js, "text/javascript; charset=utf-8"),
        "/assets/chart.js": Asset(PackageResources.chart_js, "text/javascript; charset=utf-8"),
    ]
    private static let page = Asset(PackageResources.index_html, "text/html; charset=utf-8")

    /// The file served at `path`, or nil when the path is not the dashboard's.
    public static func asset(at path: String) -> Asset? {
        pages.contains(path) ? page : assets[path]
    }

    /// Total size of the page and its files, in bytes.
    public static var totalBytes: Int { page.bytes.count + assets.values.reduce(0) { $0 + $1.bytes.count } }
}
