/**
 * Scope bookkeeping shared by the backends that own memory (`wasm`, `webgpu`): every allocation
 * made inside a scope is released when the scope ends, except those kept, which pass to the
 * enclosing scope.
 *
 * @module
 */

/** An allocation a scope can track: it knows whether it was released already. */
export interface Scoped {
  /** True once the allocation's memory went back to the allocator. */
  released: boolean;
}

/** A stack of open scopes over allocations of type `A`. */
export class ScopeStack<A extends Scoped> {
  #scopes: A[][] = [];
  readonly #owner: string;

  /** An empty stack; `owner` names the backend in errors. */
  constructor(owner: string) {
    this.#owner = owner;
  }

  /** Opens a scope. */
  begin(): void {
    this.#scopes.push([]);
  }

  /** Records `a` in the innermost scope, if one is open. */
  track(a: A): void {
    const top = this.#scopes[this.#scopes.length - 1];
    if (top) top.push(a);
  }

  /**
   * Closes the innermost scope: calls `release` on each of its allocations that is neither
   * released already nor in `kept`; kept ones move to the enclosing scope (if any).
   */
  end(kept: ReadonlySet<A>, release: (a: A) => void): void {
    const top = this.#scopes.pop();
    if (!top) throw new Error(`${this.#owner} backend: endScope() without beginScope()`);
    const parent = this.#scopes[this.#scopes.length - 1];
    for (const a of top) {
      if (a.released) continue;
      if (kept.has(a)) parent?.push(a);
      else release(a);
    }
  }

  /** Forgets every open scope (on dispose). */
  clear(): void {
    this.#scopes = [];
  }
}
