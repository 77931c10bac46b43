import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { profileSchema } from '../../../helper/profile/schema.js';
import { exampleProfile } from './example.js';

const published = new URL('../../../schema/profile-v1.schema.json', import.meta.url);

describe('profile schema', () => {
  it('schema/profile-v1.schema.json is the exported schema (regenerate it if this fails)', () => {
    expect(readFileSync(published, 'utf8')).toBe(`${JSON.stringify(profileSchema, null, 2)}\n`);
  });

  it('compiles in ajv strict mode and accepts the example on its own', () => {
    const validate = new Ajv({ strict: true }).compile(JSON.parse(readFileSync(published, 'utf8')) as object);
    expect(validate(exampleProfile)).toBe(true);
  });
});
