/**
 * The results of two promises that run at once, after both have settled: the first failure (in
 * argument order) is thrown only then, so nothing is still running when the caller cleans up.
 */
export async function bothSettled<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}
