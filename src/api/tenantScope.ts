import type { SQL } from "drizzle-orm";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Db, Tx } from "../db/client.js";
import { withTenant } from "../db/tenant.js";
import { KnownKeys } from "../tenancy/knownKeys.js";
import { confirmingKey, confirmKeyBeforeAnswer, inOneStatement, tenantAuth } from "./auth.js";
import { sealListCursors } from "./cursors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Run `work` in a transaction scoped to the request's tenant (`withTenant`); set by `tenantScope`. */
    inTenant<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
    /**
     * Run `work`, one statement that checks the key itself, outside a transaction (`inOneStatement`): the
     * exception for a door that must be one round trip; set by `tenantScope`.
     */
    inOneStatement<T>(work: (db: Db, keyLive: SQL | undefined) => Promise<T | undefined>): Promise<T>;
    /**
     * Run `work`, reads that name the tenant in each statement, outside a transaction on the system handle,
     * the key confirmed beside them (`confirmingKey`); set by `tenantScope`.
     */
    read<T>(work: (db: Db) => Promise<T>): Promise<T>;
  }
}

/**
 * The scope of the tenant API: the API key decides the request's tenant (401 otherwise; a key this process
 * knows is confirmed live within the request, see `tenantAuth`), every database access of a handler goes
 * through `request.inTenant` (or, for a door that must be one round trip, `request.inOneStatement`; for reads
 * that name the tenant in every statement, `request.read`), and list
 * cursors are sealed to their list.
 */
export function tenantScope(
  scope: FastifyInstance,
  { db, systemDb, cursorKey }: { db: Db; systemDb: Db; cursorKey: Buffer },
) {
  const known = new KnownKeys();
  scope.decorateRequest("unconfirmedKey", undefined);
  scope.decorateRequest("inTenant", function inTenant<T>(this: FastifyRequest, work: (tx: Tx) => Promise<T>) {
    return withTenant(db, this.tenantId, (tx) => confirmingKey(this, known, tx, work));
  });
  scope.decorateRequest("inOneStatement", function oneStatement<
    T,
  >(this: FastifyRequest, work: (db: Db, keyLive: SQL | undefined) => Promise<T | undefined>) {
    return inOneStatement(this, known, systemDb, work);
  });
  scope.decorateRequest("read", function read<T>(this: FastifyRequest, work: (db: Db) => Promise<T>) {
    return confirmingKey(this, known, systemDb, work);
  });
  scope.addHook("onRequest", tenantAuth(systemDb, known));
  scope.addHook("onSend", confirmKeyBeforeAnswer(systemDb, known));
  sealListCursors(scope, cursorKey);
}
