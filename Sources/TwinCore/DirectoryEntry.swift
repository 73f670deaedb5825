#if canImport(Glibc)
import Glibc

/// The fields of an entry `readdir(3)` returned, read in place. The kernel's record is only as long as its
/// name: copying the whole `struct dirent` (`entry.pointee`, which a debug build does for any field) reads
/// past it, and past the end of the directory buffer when the record is the last one — a crash seen when a
/// page boundary followed. These read just the bytes that are there.
extension UnsafeMutablePointer where Pointee == dirent {
    /// The entry's name.
    public var entryName: String {
        let p = UnsafeRawPointer(self) + MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        return String(cString: p.assumingMemoryBound(to: CChar.self))
    }

    /// `DT_DIR`, `DT_REG`, ... (`DT_UNKNOWN` where the file system does not say).
    public var entryType: UInt8 {
        (UnsafeRawPointer(self) + MemoryLayout<dirent>.offset(of: \dirent.d_type)!).load(as: UInt8.self)
    }

    /// The entry's inode number.
    public var entryInode: UInt64 {
        (UnsafeRawPointer(self) + MemoryLayout<dirent>.offset(of: \dirent.d_ino)!).loadUnaligned(as: UInt64.self)
    }
}
#endif
