/**
 * The part of the WebAssembly JavaScript API that protocol/lines-json.ts uses. Node has all of it;
 * TypeScript declares it only in its DOM library, which this project does not load.
 */
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module);
    readonly exports: Record<string, unknown>;
  }
  class Global {
    private constructor();
    readonly value: unknown;
  }
  class Memory {
    private constructor();
    readonly buffer: ArrayBuffer;
    /** Adds `pages` of 64 KiB; every view of the old `buffer` is detached. */
    grow(pages: number): number;
  }
}
