/** What the API shows of registry objects: never a secret hash, and ETags where a client may need If-Match. */
import { z } from "zod";
import { NodeRecord, Pool, TokenRecord } from "../../orchestrations/clients/registry/model.js";

export const PoolView = Pool;
export const TokenView = TokenRecord.omit({ secretHash: true, etag: true });
export const NodeView = NodeRecord.omit({ etag: true });
export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), continuationToken: z.string().optional().describe("Pass back to get the next page") });

export const tokenView = (t: TokenRecord): z.infer<typeof TokenView> => {
  const { secretHash: _hash, etag: _etag, ...view } = t;
  return view;
};
export const nodeView = (n: NodeRecord): z.infer<typeof NodeView> => {
  const { etag: _etag, ...view } = n;
  return view;
};

/**
 * What the Tables SDK hands out as a continuation token: base64 of `{"nextPartitionKey": …, "nextRowKey"?: …}`. The SDK
 * decodes a token with a bare JSON.parse, so anything else must be refused here, not thrown from inside the list.
 */
const TableContinuation = z.strictObject({ nextPartitionKey: z.string().min(1).max(1024), nextRowKey: z.string().max(1024).optional() });
const MUST_BE_OURS = "must be a token returned by a previous page";

export const ContinuationToken = z
  .string()
  .max(2048)
  .refine((token) => {
    if (!/^[A-Za-z0-9+/=]+$/.test(token)) return false;
    let decoded: unknown;
    try {
      decoded = JSON.parse(Buffer.from(token, "base64").toString("latin1"));
    } catch {
      return false;
    }
    return TableContinuation.safeParse(decoded).success;
  }, MUST_BE_OURS);

export const Paging = z.strictObject({
  pageSize: z.coerce.number().int().min(1).max(1000).default(100),
  continuationToken: ContinuationToken.optional(),
});
