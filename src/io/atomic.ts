/**
 * Writing files so that a crash never leaves half of one: write a fresh temporary file in the same
 * folder, then rename it over the target (atomic on POSIX file systems).
 *
 * @module
 */

function splitPath(path: string): [string, string] {
  const slash = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  if (slash < 0) return [".", path];
  return [slash === 0 ? path.slice(0, 1) : path.slice(0, slash), path.slice(slash + 1)];
}

/**
 * Writes `bytes` to `path` atomically: the target holds either its old content or all of the new.
 * On failure the temporary file is removed and the error is rethrown. The folder must exist.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const [folder, name] = splitPath(path);
  if (name === "") throw new Error(`${JSON.stringify(path)} names no file; pass a file path`);
  const temp = `${folder}/.${name}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeFile(temp, bytes, { createNew: true, mode: 0o644 });
    await Deno.rename(temp, path);
  } catch (error) {
    // AlreadyExists: the fresh name was somebody else's file; leave it alone.
    if (!(error instanceof Deno.errors.AlreadyExists)) await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/** Writes `text` to `path` atomically (UTF-8). */
export function writeTextFileAtomic(path: string, text: string): Promise<void> {
  return writeFileAtomic(path, new TextEncoder().encode(text));
}
