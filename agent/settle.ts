/**
 * Promises that run at once, awaited until every one has settled: the first failure (in argument
 * order) is thrown only then, so nothing is still running when the caller cleans up.
 */
export async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find(
    (result) => result.status === 'rejected',
  );
  if (failed !== undefined) throw failed.reason;
}

/** `settleAll` for two promises, with both results. */
export async function bothSettled<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  await settleAll([first, second]);
  return [await first, await second];
}
