/**
 * Validation of REST bodies and ids against a collection's field specs: every refusal is a 400
 * that names the field, and nothing invalid reaches the store. `__proto__`, `constructor` and
 * `prototype` are never field names (the body reader refuses them at any level already; here they
 * are refused again because a field spec table is a plain object that inherits `constructor`).
 */
import { GatewayError } from '../../errors/gateway-error.js';
import { FORBIDDEN_KEYS } from '../../protocol/bounded-json.js';
import type { CollectionSpec, FieldSpec } from './channel-config.js';

/** Most fields a free-form entity may have, and the longest field name. */
const MAX_FREE_FIELDS = 100;
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const RESERVED = new Set(['created_at', 'updated_at', 'updated_fields']);

function invalid(message: string): never {
  throw new GatewayError('GW_ERR_BODY_INVALID', message);
}

function checkField(name: string, spec: FieldSpec, value: unknown): void {
  if (value === null) {
    if (spec.required) invalid(`Field "${name}" is required and may not be null`);
    return;
  }
  const kind = Array.isArray(value) ? 'array' : typeof value;
  switch (spec.type) {
    case 'string':
      if (kind !== 'string') invalid(`Field "${name}" must be a string (got ${kind})`);
      if (spec.maxLength !== undefined && (value as string).length > spec.maxLength) invalid(`Field "${name}" is longer than ${spec.maxLength} characters`);
      if (spec.enum && !spec.enum.includes(value as string)) invalid(`Field "${name}" must be one of ${spec.enum.join(', ')}`);
      return;
    case 'integer':
    case 'number':
      if (kind !== 'number' || !Number.isFinite(value) || (spec.type === 'integer' && !Number.isInteger(value)))
        invalid(`Field "${name}" must be ${spec.type === 'integer' ? 'a whole number' : 'a number'}`);
      if (spec.min !== undefined && (value as number) < spec.min) invalid(`Field "${name}" must be at least ${spec.min}`);
      if (spec.max !== undefined && (value as number) > spec.max) invalid(`Field "${name}" must be at most ${spec.max}`);
      return;
    case 'boolean':
      if (kind !== 'boolean') invalid(`Field "${name}" must be true or false`);
      return;
    case 'object':
      if (kind !== 'object') invalid(`Field "${name}" must be an object`);
      return;
    case 'array':
      if (kind !== 'array') invalid(`Field "${name}" must be a list`);
  }
}

/**
 * The fields of a POST (`create`: required fields must be there) or PUT (`update`: any subset)
 * body. Unknown fields are refused by name rather than silently dropped.
 */
export function validateEntityBody(collection: CollectionSpec, body: unknown, mode: 'create' | 'update'): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) invalid('Request body must be a JSON object of fields');
  const fields = body as Record<string, unknown>;
  const names = Object.keys(fields);
  for (const name of names) if (FORBIDDEN_KEYS.includes(name)) invalid(`Field name "${name}" is not allowed`);
  if (collection.fields === null) {
    if (names.length > MAX_FREE_FIELDS) invalid(`At most ${MAX_FREE_FIELDS} fields`);
    for (const name of names) {
      if (!FIELD_NAME.test(name)) invalid(`Field name ${JSON.stringify(name.slice(0, 70))} must be letters, digits and _ (at most 64)`);
      if (RESERVED.has(name) || name === collection.idField) invalid(`Field "${name}" is set by the gateway and may not be written`);
    }
  } else {
    const specs = collection.fields;
    for (const name of names) {
      if (name === collection.idField || RESERVED.has(name)) invalid(`Field "${name}" is set by the gateway and may not be written`);
      const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
      if (spec === undefined) invalid(`Unknown field ${JSON.stringify(name.slice(0, 70))}; ${collection.path} has ${Object.keys(specs).join(', ')}`);
      checkField(name, spec, fields[name]);
    }
    if (mode === 'create') {
      for (const [name, spec] of Object.entries(specs)) {
        if (spec.required && (!Object.hasOwn(fields, name) || fields[name] === undefined)) invalid(`Field "${name}" is required`);
      }
    }
  }
  if (mode === 'update' && names.length === 0) invalid('Request body names no field to update');
  return fields;
}

/** A path id: a positive whole number (ids are given by the gateway, from 1). */
export function parseEntityId(text: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(text)) throw new GatewayError('GW_ERR_ID_INVALID', `Id ${JSON.stringify(text.slice(0, 40))} is not a positive whole number`);
  return Number(text);
}
