/**
 * Getting files with their folder paths out of the DOM: a `webkitdirectory` input, or a drop
 * (which can hold whole folders).
 *
 * @module
 */
import type { PathFile } from "./files.ts";

/** The files of an `<input type="file" webkitdirectory>`, with their paths in the folder. */
export function filesFromFolderInput(list: FileList): PathFile[] {
  return Array.from(list, (file) => ({ path: file.webkitRelativePath || file.name, file }));
}

/**
 * What was dropped: the file entries (recursing into folders) of a drop event. Must be called
 * synchronously in the `drop` handler: the browser empties the `DataTransfer` afterwards.
 */
export function droppedFiles(transfer: DataTransfer): Promise<PathFile[]> {
  const entries = Array.from(transfer.items)
    .filter((item) => item.kind === "file")
    .map((item) => item.webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => Boolean(e));
  if (entries.length === 0) {
    // No entry API (old browsers): plain files only.
    return Promise.resolve(Array.from(transfer.files, (file) => ({ path: file.name, file })));
  }
  return Promise.all(entries.map((e) => walk(e, ""))).then((lists) => lists.flat());
}

async function walk(entry: FileSystemEntry, prefix: string): Promise<PathFile[]> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) =>
      (entry as FileSystemFileEntry).file(resolve, reject)
    );
    return [{ path, file }];
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const children: FileSystemEntry[] = [];
  // readEntries hands out a folder in chunks (100 in Chrome) until it returns none.
  for (;;) {
    const chunk = await new Promise<FileSystemEntry[]>((resolve, reject) =>
      reader.readEntries(resolve, reject)
    );
    if (chunk.length === 0) break;
    children.push(...chunk);
  }
  const lists = await Promise.all(children.map((c) => walk(c, path)));
  return lists.flat();
}
