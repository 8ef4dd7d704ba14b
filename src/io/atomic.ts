/**
 * Writing files so that a crash never leaves half of one: write a fresh temporary file in the same
 * folder, flush it to the disk, then rename it over the target (atomic on POSIX file systems). A
 * power loss after the rename finds the whole new file, never an empty one.
 *
 * Renaming needs read and write permission on the folder (`--allow-read=OUT --allow-write=OUT`).
 *
 * @module
 */

/** The temporary files of {@link writeFileAtomic}: `.NAME.XXXXXXXX.tmp`, 8 hex digits. */
const TEMP_NAME = /^\..+\.[0-9a-f]{8}\.tmp$/;

/** A temporary file older than this (milliseconds) belongs to a run that was killed. */
const STALE_AFTER_MS = 60_000;

function splitPath(path: string): [string, string] {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (slash < 0) return [".", path];
  return [slash === 0 ? path.slice(0, 1) : path.slice(0, slash), path.slice(slash + 1)];
}

/**
 * Writes `bytes` to `path` atomically: the target holds either its old content or all of the new.
 * On failure the temporary file is removed and the error names `path` (never the temporary file).
 * The folder must exist.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const [folder, name] = splitPath(path);
  if (name === "") throw new Error(`${JSON.stringify(path)} names no file; pass a file path`);
  const temp = `${folder}/.${name}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  let created = false;
  try {
    const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
    created = true;
    try {
      for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (error) {
    if (created) await Deno.remove(temp).catch(() => {});
    const why = (error instanceof Error ? error.message : String(error)).replaceAll(temp, path);
    throw new Error(`cannot write ${path}: ${why}`, { cause: error });
  }
  await syncFolder(folder);
}

/** Flushes a folder's entries (the rename) to the disk where the platform allows it. */
async function syncFolder(folder: string): Promise<void> {
  try {
    const dir = await Deno.open(folder, { read: true });
    try {
      await dir.syncData();
    } finally {
      dir.close();
    }
  } catch {
    // Not every platform opens folders (Windows does not); the file itself is on the disk.
  }
}

/** Writes `text` to `path` atomically (UTF-8). */
export function writeTextFileAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, new TextEncoder().encode(text));
}

/**
 * Removes the temporary files a killed run left in `folder` (those of {@link writeFileAtomic} not
 * touched for a minute; a write in progress is younger) and returns their names.
 */
export async function removeStaleTemporaryFiles(folder: string): Promise<string[]> {
  const removed: string[] = [];
  const now = Date.now();
  for await (const entry of Deno.readDir(folder)) {
    if (!entry.isFile || !TEMP_NAME.test(entry.name)) continue;
    const path = `${folder}/${entry.name}`;
    try {
      const mtime = (await Deno.stat(path)).mtime?.getTime() ?? now;
      if (now - mtime < STALE_AFTER_MS) continue;
      await Deno.remove(path);
      removed.push(entry.name);
    } catch {
      // Gone already (another run cleaned it), or not ours to remove: leave it.
    }
  }
  return removed;
}
