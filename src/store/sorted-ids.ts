/**
 * An ordered set of ids kept as a list of short sorted chunks (a one-level B-tree): insert and delete cost a
 * binary search plus a shift of at most one chunk, however many ids there are, and a page from any id is a
 * binary search plus a walk. Ids compare as JavaScript strings (UTF-16 code units), the order of the other
 * stores' `COLLATE "C"` / lexicographic indexes for the ids they accept.
 * @module
 * @internal
 */

/** Ids per chunk before it splits in two. */
const MAX_CHUNK = 512;

/** The index of the first element of `sorted` that is >= `id`. */
function lowerBound(sorted: readonly string[], id: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** An ordered set of strings. @internal */
export class SortedIds {
  /** Non-empty sorted chunks, in order: every id of a chunk is less than every id of the next. */
  readonly #chunks: string[][] = [];
  #size = 0;

  /** How many ids are held. */
  get size(): number {
    return this.#size;
  }

  /** The index of the chunk that holds `id` or would: the first whose last id is >= `id` (or the last chunk). */
  #chunkOf(id: string): number {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = chunks[mid] as string[];
      if ((chunk[chunk.length - 1] as string) < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Add `id`; `false` if it was already there. */
  add(id: string): boolean {
    if (this.#chunks.length === 0) {
      this.#chunks.push([id]);
      this.#size = 1;
      return true;
    }
    const c = this.#chunkOf(id);
    const chunk = this.#chunks[c] as string[];
    const i = lowerBound(chunk, id);
    if (chunk[i] === id) return false;
    chunk.splice(i, 0, id);
    this.#size++;
    if (chunk.length > MAX_CHUNK) this.#chunks.splice(c + 1, 0, chunk.splice(chunk.length >>> 1));
    return true;
  }

  /** Remove `id`; `false` if it was not there. */
  delete(id: string): boolean {
    if (this.#chunks.length === 0) return false;
    const c = this.#chunkOf(id);
    const chunk = this.#chunks[c] as string[];
    const i = lowerBound(chunk, id);
    if (chunk[i] !== id) return false;
    chunk.splice(i, 1);
    this.#size--;
    if (chunk.length === 0) this.#chunks.splice(c, 1);
    return true;
  }

  /** The ids greater than `after` (every id when `after` is `undefined`), in order. */
  *after(after: string | undefined): Generator<string> {
    const chunks = this.#chunks;
    if (chunks.length === 0) return;
    let c = after === undefined ? 0 : this.#chunkOf(after);
    let i = 0;
    if (after !== undefined) {
      const chunk = chunks[c] as string[];
      i = lowerBound(chunk, after);
      if (chunk[i] === after) i++;
    }
    for (; c < chunks.length; c++, i = 0) {
      const chunk = chunks[c] as string[];
      for (; i < chunk.length; i++) yield chunk[i] as string;
    }
  }
}
