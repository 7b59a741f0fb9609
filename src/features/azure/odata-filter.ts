/**
 * The OData filter of Azure Web PubSub's send and group operations (docs/compat/azure-webpubsub.md
 * §2.4), compiled once into a predicate over a connection: identifiers `userId`, `connectionId`
 * (strings) and `groups` (a collection); `eq ne gt ge lt le`, `and or not`, parentheses, `in`;
 * literals 'text' ('' escapes a quote), integers, true, false, null; functions tolower, toupper,
 * trim, substring, concat, indexof, length, startswith, endswith, contains.
 * Identifier names are case-insensitive. A filter that does not parse throws GW_ERR_AZURE_FILTER_INVALID.
 */
import { GatewayError } from '../../errors/gateway-error.js';

interface FilterSubject {
  readonly id: string;
  readonly userId: string | null;
  readonly groups: ReadonlySet<string>;
}

export type Predicate = (subject: FilterSubject) => boolean;

type Value = string | number | boolean | null | readonly string[];
type Expr = (s: FilterSubject) => Value;

const MAX_FILTER_LENGTH = 4096;
const MAX_CLAUSES = 200;

interface Token {
  readonly kind: 'str' | 'num' | 'word' | 'punct';
  readonly text: string;
}

function invalid(why: string): never {
  throw new GatewayError('GW_ERR_AZURE_FILTER_INVALID', `Invalid filter: ${why}`);
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: 'punct', text: c });
      i++;
    } else if (c === "'") {
      let value = '';
      i++;
      for (;;) {
        if (i >= text.length) invalid('unterminated string');
        if (text[i] === "'") {
          if (text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += text[i++];
      }
      tokens.push({ kind: 'str', text: value });
    } else if (/[0-9-]/.test(c)) {
      const m = /^-?\d+/.exec(text.slice(i));
      if (!m) invalid(`unexpected "${c}" at ${i}`);
      tokens.push({ kind: 'num', text: m[0] });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))!;
      tokens.push({ kind: 'word', text: m[0] });
      i += m[0].length;
    } else {
      invalid(`unexpected "${c}" at ${i}`);
    }
  }
  return tokens;
}

const str = (v: Value): string | null => (typeof v === 'string' ? v : null);

const FUNCTIONS: Readonly<Record<string, { readonly arity: readonly number[]; readonly run: (args: Value[]) => Value }>> = {
  tolower: { arity: [1], run: ([a]) => str(a)?.toLowerCase() ?? null },
  toupper: { arity: [1], run: ([a]) => str(a)?.toUpperCase() ?? null },
  trim: { arity: [1], run: ([a]) => str(a)?.trim() ?? null },
  length: { arity: [1], run: ([a]) => (typeof a === 'string' || Array.isArray(a) ? a.length : null) },
  concat: { arity: [2], run: ([a, b]) => (str(a) !== null && str(b) !== null ? (a as string) + (b as string) : null) },
  indexof: { arity: [2], run: ([a, b]) => (str(a) !== null && str(b) !== null ? (a as string).indexOf(b as string) : null) },
  substring: {
    arity: [2, 3],
    run: ([a, start, count]) => {
      if (str(a) === null || typeof start !== 'number') return null;
      return typeof count === 'number' ? (a as string).substr(start, count) : (a as string).slice(start);
    },
  },
  startswith: { arity: [2], run: ([a, b]) => str(a) !== null && str(b) !== null && (a as string).startsWith(b as string) },
  endswith: { arity: [2], run: ([a, b]) => str(a) !== null && str(b) !== null && (a as string).endsWith(b as string) },
  contains: {
    arity: [2],
    run: ([a, b]) => (Array.isArray(a) ? a.includes(b as string) : str(a) !== null && str(b) !== null && (a as string).includes(b as string)),
  },
};

const COMPARISONS: Readonly<Record<string, (a: Value, b: Value) => boolean>> = {
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  gt: (a, b) => a !== null && b !== null && typeof a === typeof b && a > b,
  ge: (a, b) => a !== null && b !== null && typeof a === typeof b && a >= b,
  lt: (a, b) => a !== null && b !== null && typeof a === typeof b && a < b,
  le: (a, b) => a !== null && b !== null && typeof a === typeof b && a <= b,
};

const groupsOf = (s: FilterSubject): readonly string[] => [...s.groups];

const IDENTIFIERS: Readonly<Record<string, Expr>> = {
  userid: (s) => s.userId,
  connectionid: (s) => s.id,
  groups: groupsOf,
};

class Parser {
  private at = 0;
  private clauses = 0;

  constructor(private readonly tokens: Token[]) {}

  private peek(): Token | undefined {
    return this.tokens[this.at];
  }

  private isWord(word: string): boolean {
    const t = this.peek();
    return t !== undefined && t.kind === 'word' && t.text.toLowerCase() === word;
  }

  private expect(text: string): void {
    const t = this.tokens[this.at++];
    if (t === undefined || t.text !== text) invalid(`expected "${text}"${t ? ` but found "${t.text}"` : ' at the end'}`);
  }

  parse(): Expr {
    const expr = this.or();
    if (this.at < this.tokens.length) invalid(`unexpected "${this.tokens[this.at].text}"`);
    return expr;
  }

  private or(): Expr {
    let left = this.and();
    while (this.isWord('or')) {
      this.at++;
      const l = left;
      const r = this.and();
      left = (s) => l(s) === true || r(s) === true;
    }
    return left;
  }

  private and(): Expr {
    let left = this.not();
    while (this.isWord('and')) {
      this.at++;
      const l = left;
      const r = this.not();
      left = (s) => l(s) === true && r(s) === true;
    }
    return left;
  }

  private not(): Expr {
    if (this.isWord('not')) {
      this.at++;
      const inner = this.not();
      return (s) => inner(s) !== true;
    }
    return this.comparison();
  }

  private comparison(): Expr {
    const left = this.primary();
    const t = this.peek();
    if (t?.kind !== 'word') return left;
    const op = t.text.toLowerCase();
    if (++this.clauses > MAX_CLAUSES) invalid(`more than ${MAX_CLAUSES} clauses`);
    if (op === 'in') {
      this.at++;
      const right = this.primaryOrList();
      return (s) => {
        const set = right(s);
        return Array.isArray(set) && set.includes(left(s) as string);
      };
    }
    const compare = COMPARISONS[op];
    if (!compare) return left;
    this.at++;
    const right = this.primary();
    return (s) => compare(left(s), right(s));
  }

  /** `in`'s right side: a parenthesised list of literals, or an expression (`groups`). */
  private primaryOrList(): Expr {
    if (this.peek()?.text !== '(') return this.primary();
    this.at++;
    const items: Expr[] = [];
    if (this.peek()?.text !== ')') {
      items.push(this.primary());
      while (this.peek()?.text === ',') {
        this.at++;
        items.push(this.primary());
      }
    }
    this.expect(')');
    return (s) => items.map((item) => item(s)) as string[];
  }

  private primary(): Expr {
    const t = this.tokens[this.at++];
    if (t === undefined) invalid('unexpected end');
    if (t.kind === 'str') return () => t.text;
    if (t.kind === 'num') {
      const n = Number(t.text);
      return () => n;
    }
    if (t.text === '(') {
      const inner = this.or();
      this.expect(')');
      return inner;
    }
    if (t.kind !== 'word') invalid(`unexpected "${t.text}"`);
    const word = t.text.toLowerCase();
    if (word === 'true' || word === 'false') {
      const b = word === 'true';
      return () => b;
    }
    if (word === 'null') return () => null;
    const fn = FUNCTIONS[word];
    if (fn && this.peek()?.text === '(') {
      this.at++;
      const args: Expr[] = [];
      if (this.peek()?.text !== ')') {
        args.push(this.or());
        while (this.peek()?.text === ',') {
          this.at++;
          args.push(this.or());
        }
      }
      this.expect(')');
      if (!fn.arity.includes(args.length)) invalid(`${word} takes ${fn.arity.join(' or ')} arguments`);
      return (s) => fn.run(args.map((a) => a(s)));
    }
    const identifier = IDENTIFIERS[word];
    if (!identifier) invalid(`unknown identifier "${t.text}" (userId, connectionId and groups are)`);
    return identifier;
  }
}

/** Filters compiled on this thread, by text: a sender repeats the same few, and each send is applied on every edge. */
const compiled = new Map<string, Predicate>();
const MAX_COMPILED = 256;

export function compileFilter(text: string): Predicate {
  const known = compiled.get(text);
  if (known !== undefined) return known;
  if (text.length > MAX_FILTER_LENGTH) invalid(`longer than ${MAX_FILTER_LENGTH} characters`);
  const expr = new Parser(tokenize(text)).parse();
  const predicate: Predicate = (subject) => expr(subject) === true;
  if (compiled.size >= MAX_COMPILED) compiled.delete(compiled.keys().next().value!);
  compiled.set(text, predicate);
  return predicate;
}
