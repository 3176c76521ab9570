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

export const Paging = z.strictObject({
  pageSize: z.coerce.number().int().min(1).max(1000).default(100),
  continuationToken: z
    .string()
    .max(2048)
    .regex(/^[A-Za-z0-9+/=_-]*$/, "must be a token returned by a previous page")
    .optional(),
});
