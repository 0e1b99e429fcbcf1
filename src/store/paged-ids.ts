import type { Collection, Store } from './store.js';

/** Ids read a page at a time, so a collection that grows with the estate (alerts) is never listed in one long read. */
export const ID_PAGE = 1000;

/**
 * Every id of a collection in id order, one `listIds` page per `pageSize` ids. Each page starts after the last id
 * seen: a record added behind the cursor meanwhile is missed (a later pass sees it), one added ahead is read.
 */
export function* pagedIds(store: Pick<Store, 'listIds'>, collection: Collection, pageSize = ID_PAGE): Generator<string> {
  for (let after: string | undefined; ;) {
    const page = store.listIds(collection, { limit: pageSize, ...(after !== undefined ? { after } : {}) });
    yield* page;
    if (page.length < pageSize) return;
    after = page[page.length - 1]!;
  }
}
