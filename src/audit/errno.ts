// Go-style errno text for audit messages (matches the reference's "open <f>: is a directory").
export function errnoText(e: NodeJS.ErrnoException): string {
  const map: Record<string, string> = {
    ENOENT: "no such file or directory",
    EISDIR: "is a directory",
    EACCES: "permission denied",
    ENOTDIR: "not a directory",
    ENOSPC: "no space left on device",
    EROFS: "read-only file system",
    EEXIST: "file exists",
    EBADF: "bad file descriptor",
    EIO: "input/output error",
  };
  return (e.code && map[e.code]) ?? e.message;
}
