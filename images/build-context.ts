import { pack } from 'tar-stream';

export interface ContextEntry {
  /** Path inside the build context, e.g. `Dockerfile` or `rootfs/bin/busybox`. */
  name: string;
  /** File content; omit for a directory. */
  content?: Buffer | string;
  mode?: number;
}

/** A build context as an in-memory tar, so building needs no temp folder and no registry. */
export async function tarContext(entries: readonly ContextEntry[]): Promise<Buffer> {
  const archive = pack();
  for (const entry of entries) {
    if (entry.content === undefined) {
      archive.entry({ name: entry.name, type: 'directory', mode: entry.mode ?? 0o755 });
    } else {
      archive.entry({ name: entry.name, mode: entry.mode ?? 0o644 }, entry.content);
    }
  }
  archive.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of archive) {
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  }
  return Buffer.concat(chunks);
}
