/** A database client that records the text of every query sent through it (for tests of what a store sends). */
export function recording<T extends { query: (...args: never[]) => unknown }>(
  client: T,
): { client: T; texts: string[] } {
  const texts: string[] = [];
  const wrapped = new Proxy(client, {
    get(target, name) {
      const value = Reflect.get(target, name, target);
      if (name !== 'query') return typeof value === 'function' ? value.bind(target) : value;
      // A node-postgres named statement comes as `{ name, text, values }`: its text is recorded.
      return (text: string | { text: string }, ...rest: unknown[]) => {
        texts.push(typeof text === 'string' ? text : text.text);
        return (value as (...a: unknown[]) => unknown).call(target, text, ...rest);
      };
    },
  });
  return { client: wrapped, texts };
}
