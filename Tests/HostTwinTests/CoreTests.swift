import Foundation
import Testing
import TwinCore

@Suite struct CoreTests {
    @Test func redactsSecretsInCommandLines() {
        let r = Redactor()
        #expect(r.redact(arguments: ["mysqld", "--password=hunter2", "--port=3306"]) == ["mysqld", "--password=***", "--port=3306"])
        #expect(r.redact(arguments: ["app", "--token", "abc", "--verbose"]) == ["app", "--token", "***", "--verbose"])
        #expect(r.redact(arguments: ["app", "--api-key", "k1", "--keyboard", "us"]) == ["app", "--api-key", "***", "--keyboard", "us"])
        #expect(r.redact(arguments: ["env", "AWS_SECRET_ACCESS_KEY=xyz", "DB_PASSWORD=p", "HOME=/root"]) == ["env", "AWS_SECRET_ACCESS_KEY=***", "DB_PASSWORD=***", "HOME=/root"])
        #expect(r.redact(arguments: ["psql", "postgres://bob:s3cret@db:5432/x"]) == ["psql", "postgres://bob:***@db:5432/x"])
        // Found byte by byte: offsets past multi-byte characters still cut at the right place.
        #expect(r.redact(arguments: ["app", "--dsn=ünïcode://bøb:s3cret@db", "ключ://u:p@h"]) == ["app", "--dsn=ünïcode://bøb:***@db", "ключ://u:***@h"])
        #expect(r.redact(arguments: ["curl", "token=abc"]) == ["curl", "token=***"])
        #expect(r.redact(arguments: ["ssh", "--ssh-key", "/k", "host"]) == ["ssh", "--ssh-key", "***", "host"])
        // A flag followed by another flag has no value to hide.
        #expect(r.redact(arguments: ["app", "--password", "--other"]) == ["app", "--password", "--other"])
        // The program name is never taken for a secret flag.
        #expect(r.redact(arguments: ["--token"]) == ["--token"])
        #expect(r.redact(arguments: []) == [])
        #expect(r.redact(arguments: ["backend", "--env", #"{"API_TOKEN": "t0k", "HOME": "/root", "DB_PASSWORD":"p\"w"}"#])
                == ["backend", "--env", #"{"API_TOKEN": "***", "HOME": "/root", "DB_PASSWORD":"***"}"#])
    }

    /// The forms issue 12 found missed: headers, attached passwords, curl's user:password, sshpass,
    /// mysql's detached password and PGPASSWORD-style variables.
    @Test func redactsHeadersAndToolSpecificPasswords() {
        let r = Redactor()
        #expect(r.redact(arguments: ["curl", "-H", "Authorization: Bearer eyJhbGciOi.x.y", "https://api"]) == ["curl", "-H", "Authorization: ***", "https://api"])
        #expect(r.redact(arguments: ["curl", "-H", "X-Api-Key: k3y", "--header=Cookie: sid=1"]) == ["curl", "-H", "X-Api-Key: ***", "--header=Cookie: ***"])
        #expect(r.redact(arguments: ["wget", "--header", "authorization: Basic dXNlcjpwYXNz"]) == ["wget", "--header", "authorization: ***"])
        #expect(r.redact(arguments: ["sh", "-c", "curl -H 'Authorization: Bearer abcdef123456' x"]) == ["sh", "-c", "curl -H 'Authorization: Bearer ***' x"])
        #expect(r.redact(arguments: ["mysql", "-uroot", "-pSECRET", "db"]) == ["mysql", "-uroot", "-p***", "db"])
        #expect(r.redact(arguments: ["/usr/bin/mysqldump", "-p", "db"]) == ["/usr/bin/mysqldump", "-p", "db"])
        #expect(r.redact(arguments: ["mysql", "--password", "X"]) == ["mysql", "--password", "***"])
        #expect(r.redact(arguments: ["curl", "-u", "user:pass", "https://x"]) == ["curl", "-u", "user:***", "https://x"])
        #expect(r.redact(arguments: ["curl", "-uuser:pass", "--user=bob:pw", "--proxy-user", "p:q"]) == ["curl", "-uuser:***", "--user=bob:***", "--proxy-user", "p:***"])
        #expect(r.redact(arguments: ["sshpass", "-p", "X", "ssh", "host"]) == ["sshpass", "-p", "***", "ssh", "host"])
        #expect(r.redact(arguments: ["sshpass", "-pX", "ssh", "host"]) == ["sshpass", "-p***", "ssh", "host"])
        #expect(r.redact(arguments: ["env", "PGPASSWORD=s3", "MYSQL_PWD=s4", "REDISCLI_AUTH=s5", "PATH=/bin"]) == ["env", "PGPASSWORD=***", "MYSQL_PWD=***", "REDISCLI_AUTH=***", "PATH=/bin"])
        // Look-alikes stay: ports, sort -u, python -u, URLs and times with colons.
        #expect(r.redact(arguments: ["ssh", "-p22", "host"]) == ["ssh", "-p22", "host"])
        #expect(r.redact(arguments: ["python3", "-u", "app.py", "--listen", "0.0.0.0:80"]) == ["python3", "-u", "app.py", "--listen", "0.0.0.0:80"])
        #expect(r.redact(arguments: ["curl", "https://example.com:8443/x", "Host: a"]) == ["curl", "https://example.com:8443/x", "Host: a"])
        // Names and values beyond ASCII: the separators are found as bytes, the cuts fall on characters.
        #expect(r.redact(arguments: ["app", "--naïve-token=åbc", "--clé=v", "X-Tökën-Key: vâl", "--header=Çookie: s"])
                == ["app", "--naïve-token=***", "--clé=v", "X-Tökën-Key: ***", "--header=Çookie: s"])
        #expect(r.redact(arguments: ["mysql", "-pé", "-uü:pé"]) == ["mysql", "-p***", "-uü:***"])
    }

    /// Issue 12: `+4611686018427387000ms4611686018427387000ms` trapped in TwinTime and took the process down.
    @Test func timesAndDurationsNeverOverflow() throws {
        let now: Int64 = 1_800_000_000_000
        for text in ["+4611686018427387000ms4611686018427387000ms", "-4611686018427387000ms4611686018427387000ms",
                     "+9223372036854775807ms", "-106751991167d", "+1e400s", "+999999999999999999999999999999y", "+1001y", "-1000y1000y"] {
            #expect(throws: TwinError.self, "\(text)") { try TwinTime.parse(text, now: now) }
        }
        for text in ["4611686018427387000ms4611686018427387000ms", "1001y", "9999999999999999999999999h", "1.5.5s"] {
            #expect(throws: TwinError.self, "\(text)") { try TwinTime.parseDuration(text) }
        }
        #expect(try TwinTime.parse("+1000y", now: now) == now + 1000 * 31_536_000_000)
        #expect(try TwinTime.parseDuration("1000y") == 1000 * 31_536_000_000)
        #expect(Int64(saturating: 1e300) == .max && Int64(saturating: -1e300) == .min && Int64(saturating: .nan) == 0)
        #expect(Int64(saturating: .infinity) == .max && Int64(saturating: 12.9) == 12 && Int64(saturating: -0.5) == -1)
    }

    @Test func parsesTimes() throws {
        let now: Int64 = 1_800_000_000_000
        #expect(try TwinTime.parse("now", now: now) == now)
        #expect(try TwinTime.parse("-5m", now: now) == now - 300_000)
        #expect(try TwinTime.parse("-2h", now: now) == now - 7_200_000)
        #expect(try TwinTime.parse("-1d", now: now) == now - 86_400_000)
        #expect(try TwinTime.parse("1700000000", now: now) == 1_700_000_000_000)
        #expect(try TwinTime.parse("1700000000.5", now: now) == 1_700_000_000_500)
        #expect(try TwinTime.parse("2026-11-28T03:00:00Z", now: now) == 1_795_834_800_000)
        #expect(try TwinTime.parse("2026-11-28T04:00:00+01:00", now: now) == 1_795_834_800_000)
        #expect(try TwinTime.parse("2026-11-28 03:00", now: now) == 1_795_834_800_000)
        #expect(try TwinTime.parse("2026-11-28T03:00:00.250Z", now: now) == 1_795_834_800_250)
        for bad in ["", "yesterday", "-5x", "2026-13-01T00:00:00Z", "2026-11-28T03:00:00Zjunk", "1e20", "-"] {
            #expect(throws: TwinError.self, "\(bad)") { try TwinTime.parse(bad, now: now) }
        }
        #expect(TwinTime.rfc3339(1_795_834_800_000) == "2026-11-28T03:00:00Z")
        #expect(TwinTime.rfc3339(1_795_834_800_250) == "2026-11-28T03:00:00.250Z")
        #expect(TwinTime.rfc3339(0) == "1970-01-01T00:00:00Z")
        #expect(try TwinTime.parseDuration("1h30m") == 5_400_000)
        #expect(try TwinTime.parseDuration("500ms") == 500)
        #expect(throws: TwinError.self) { try TwinTime.parseDuration("5") }
    }

    @Test func timeRoundTrips() throws {
        for _ in 0..<1000 {
            let t = Int64.random(in: 0...4_000_000_000_000)
            #expect(try TwinTime.parse(TwinTime.rfc3339(t)) == t)
        }
    }

    @Test func seriesKeys() throws {
        let k = try SeriesKey.parse(#"node_cpu_seconds_total{mode="idle",cpu="0"}"#)
        #expect(k.metric == "node_cpu_seconds_total")
        #expect(k.description == #"node_cpu_seconds_total{cpu="0",mode="idle"}"#)
        #expect(try SeriesKey.parse("node_load1") == SeriesKey("node_load1"))
        #expect(try SeriesKey.parse(#"{__name__="up",job="x"}"#) == SeriesKey("up", Labels(["job": "x"])))
        let escaped = try SeriesKey.parse(#"m{path="a\"b\\c"}"#)
        #expect(escaped.labels["path"] == #"a"b\c"#)
        #expect(escaped.description == #"m{path="a\"b\\c"}"#)
        for bad in ["", "m{", #"m{a="1""#, #"m{a=1}"#, #"m{a!="1"}"#, "m x", "{}"] {
            #expect(throws: TwinError.self, "\(bad)") { try SeriesKey.parse(bad) }
        }
    }

    @Test func formatsValuesAsGo() {
        let cases: [(Double, String)] = [
            (0, "0"), (1, "1"), (10870.69, "10870.69"), (1.418183276e+09, "1.418183276e+09"), (26442, "26442"),
            (507162, "507162"), (1.631329e+06, "1.631329e+06"), (60730 * 0.001, "60.730000000000004"),
            (0.0001, "0.0001"), (0.00001, "1e-05"), (-2.5, "-2.5"), (.nan, "NaN"), (.infinity, "+Inf"), (-.infinity, "-Inf"),
            (3.5183963009024e+13, "3.5183963009024e+13"), (123456, "123456"), (1e21, "1e+21"),
        ]
        for (v, s) in cases { #expect(PrometheusText.formatValue(v) == s, "\(v)") }
    }

    @Test func entityChanges() {
        let c = TwinEvent.changes(from: ["a": 1, "b": "x", "gone": true], to: ["a": 2, "b": "x", "new": "n"])
        #expect(c.map(\.attribute) == ["a", "gone", "new"])
        #expect(c[0].old == .int(1) && c[0].new == .int(2))
        #expect(c[1].new == nil)
    }
}
