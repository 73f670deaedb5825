import Foundation
import TwinFuzzTargets

// libFuzzer's driver, called from our own main: SwiftPM links executables through a renamed `main`, so the
// fuzzer's own `main` cannot be used. The target is named by $FUZZ_TARGET (scripts/fuzz.sh sets it).

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
guard let chosen = FuzzTargets.all[name] else {
    FileHandle.standardError.write(Data("FUZZ_TARGET must be one of: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
    exit(2)
}
nonisolated(unsafe) var target = chosen

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    target(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
})
