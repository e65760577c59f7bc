class Mutex {
  #tail = Promise.resolve();
  run(fn) {
    const result = this.#tail.then(fn, fn);
    this.#tail = result.catch(() => {
    });
    return result;
  }
}
export {
  Mutex
};
//# sourceMappingURL=mutex.js.map
