// A small typed builder of JSON Schemas: each builder returns a plain JSON Schema object
// (what ajv compiles, in strict mode) whose TypeScript type also carries the type of the
// values it accepts, so `Infer<typeof s>` is the type and `s` the run-time check, from one
// declaration. Only the keywords the helper's API needs. Pure: no ajv at run time here.

declare const ACCEPTS: unique symbol;

/** A JSON Schema that accepts values of type T. The type lives only in the type system. */
export type Schema<T> = { readonly [keyword: string]: unknown } & { readonly [ACCEPTS]?: T };

/** The type of the values a schema accepts. */
export type Infer<S> = S extends { readonly [ACCEPTS]?: infer T } ? T : never;

type Props = Record<string, Schema<unknown>>;
type Simplify<T> = { [K in keyof T]: T[K] } & unknown;
/** Required keys as listed, the others optional; no property at all: the empty object. */
type ObjectOf<P extends Props, R extends keyof P> = [keyof P] extends [never]
  ? Record<string, never>
  : Simplify<{ [K in keyof P as K extends R ? K : never]: Infer<P[K]> } & { [K in keyof P as K extends R ? never : K]?: Infer<P[K]> }>;

const schema = <T>(s: Record<string, unknown>): Schema<T> => s as Schema<T>;

export const integer = (range: { minimum?: number; maximum?: number } = {}) => schema<number>({ type: 'integer', ...range });

export const string = (c: { minLength?: number; maxLength?: number; pattern?: string } = {}) => schema<string>({ type: 'string', ...c });

export const boolean = () => schema<boolean>({ type: 'boolean' });

/** One of these strings (`enum`). */
export const oneOf = <const V extends string>(values: readonly V[]) => schema<V>({ enum: [...values] });

export const array = <T>(items: Schema<T>, c: { minItems?: number; maxItems?: number; uniqueItems?: boolean } = {}) =>
  schema<T[]>({ type: 'array', ...c, items });

/** An object with exactly these properties (no others), of which `required` must be present. */
export const object = <P extends Props, const R extends keyof P & string = never>(properties: P, required: readonly R[] = []) =>
  schema<ObjectOf<P, R>>({ type: 'object', properties, required: [...required], additionalProperties: false });
