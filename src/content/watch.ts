// watch.ts: reloads the content when a served file or directory changes, debounced so a burst
// of writes (an editor's save, a deploy) becomes one reload.
import * as fs from "node:fs";
import * as path from "node:path";

import type { ContentOptions } from "./content";

/** Files and directories the content was read from. */
export function watchedPaths(c: ContentOptions): string[] {
  const files = c.routes.flatMap((r) => {
    const v = r.slice(r.indexOf("=") + 1);
    return v.startsWith("@") ? [path.resolve(v.slice(1))] : [];
  });
  return [...c.dirs.map((d) => path.resolve(d)), ...files];
}

export function watchContent(paths: string[], onChange: () => void, debounceMs = 200): () => void {
  let timer: NodeJS.Timeout | undefined;
  const fire = (): void => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };
  const watchers: fs.FSWatcher[] = [];
  for (const p of paths) {
    try {
      const recursive = fs.statSync(p).isDirectory();
      // A file is watched through its directory: editors replace files (rename over), which
      // ends a watch on the file itself.
      const target = recursive ? p : path.dirname(p);
      const name = path.basename(p);
      const w = fs.watch(target, { recursive, persistent: false }, (_event, file) => {
        if (recursive || file === null || file === name) fire();
      });
      w.on("error", () => undefined);
      watchers.push(w);
    } catch {
      // A path that vanished: the reload that follows will say so.
    }
  }
  return () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
}
