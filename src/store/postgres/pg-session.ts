/**
 * How the PostgreSQL driver talks to its pool: every failure goes through storeError (an
 * unreachable or timed-out database is GW_ERR_STORE_UNAVAILABLE), and a transaction is opened
 * together with its first statement, in one round trip.
 *
 * `transaction` is the driver's own, never part of the Store interface: each repository method
 * hands it a fixed sequence of statements, and nothing outside the driver awaits while the
 * transaction (and the sequence row it locks) is open.
 */
import pg from 'pg';
import { storeError } from './store-unavailable.js';

/** A value for the simple-query protocol, quoted as a string literal (pg's escapeLiteral). */
export const literal = (value: string): string => pg.escapeLiteral(value);

/** What a statement runs on: the session (any free connection) or a transaction's connection. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export class PgSession implements Queryable {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * One statement on any free connection (its own transaction). With `name`, a prepared statement
   * of that name (one per connection, parsed and planned once; one name is only ever one text):
   * for a hot statement whose planning costs more than running it.
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[], name?: string): Promise<pg.QueryResult<R>> {
    try {
      return await (name === undefined ? this.pool.query<R>(text, values) : this.pool.query<R>({ name, text, values }));
    } catch (err) {
      throw storeError(err);
    }
  }

  /**
   * A write that is one statement, its own transaction: as `query`, but once the statement is on
   * its way a lost connection (no answer from the server) may have left it applied, and the
   * GW_ERR_STORE_UNAVAILABLE says so, as for a lost COMMIT: a client told to simply retry a create
   * would make it twice. A connection that could not be had sent nothing; an error the server
   * answered rolled the statement back.
   */
  async write<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[], name?: string): Promise<pg.QueryResult<R>> {
    const { client, release } = await this.checkout();
    try {
      const result = await (name === undefined ? client.query<R>(text, values) : client.query<R>({ name, text, values }));
      release();
      return result;
    } catch (err) {
      const mapped = storeError(err, !(err instanceof pg.DatabaseError));
      release(mapped === err ? undefined : (err as Error));
      throw mapped;
    }
  }

  /**
   * A connection of its own, and its release (with an error: destroyed, not returned to the pool).
   * A checked-out client has no 'error' listener of the pool's: without the one added here, the
   * server dropping the connection while it is out would be an uncaught error (the query rejects too).
   */
  private async checkout(): Promise<{ client: pg.PoolClient; release: (err?: Error) => void }> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw storeError(err);
    }
    const onError = () => {};
    client.on('error', onError);
    return {
      client,
      release: (err?: Error) => {
        client.removeListener('error', onError);
        client.release(err);
      },
    };
  }

  /**
   * `BEGIN` and `first` (statements without parameters: values go in with `literal`) in one round
   * trip; then `body` with the connection and the results of first's statements; then COMMIT.
   * Any error rolls back; a connection that failed is destroyed, not returned to the pool.
   */
  async transaction<T>(first: string, body: (client: pg.PoolClient, firstResults: pg.QueryResult[]) => Promise<T>): Promise<T> {
    const { client, release } = await this.checkout();
    let committing = false;
    try {
      // The simple-query protocol: several statements in one message, one result each.
      const results = (await client.query(`BEGIN; ${first}`)) as unknown as pg.QueryResult[];
      const value = await body(client, results.slice(1));
      committing = true;
      await client.query('COMMIT');
      release();
      return value;
    } catch (err) {
      const mapped = storeError(err, committing);
      if (mapped === err || !committing) {
        // A refusal or a failed statement: roll back on the same connection, unless it is gone.
        try {
          await client.query('ROLLBACK');
          release();
        } catch (rollbackErr) {
          release(rollbackErr as Error);
        }
      } else {
        release(err as Error);
      }
      throw mapped;
    }
  }
}
