/** Small string formats shared by the fleet schema and the provider schemas. */
import { z } from 'zod';

/** RFC 1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function dnsLabel(maxLength = 63) {
  return z
    .string()
    .max(maxLength, { error: `must be at most ${maxLength} characters` })
    .regex(DNS_LABEL, {
      error: `must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit`,
    });
}

/** A string that must not be empty (after trimming). */
export function nonEmpty() {
  return z.string().refine((value) => value.trim() !== '', { error: 'must not be empty' });
}

/** A map of string to string (labels, annotations, environment). */
export function stringMap() {
  return z.record(z.string(), z.string({ error: 'expected a string value (quote numbers and booleans)' }));
}

/** An http or https URL, without a trailing slash. */
export function httpUrl() {
  return z
    .string()
    .refine(
      (value) => {
        try {
          const url = new URL(value);
          return (url.protocol === 'https:' || url.protocol === 'http:') && url.hostname !== '';
        } catch {
          return false;
        }
      },
      { error: 'must be an http:// or https:// URL' },
    )
    .transform((value) => value.replace(/\/+$/, ''))
    .meta({ docType: 'URL' });
}

/**
 * `when` option for object-level checks that should run even when a field failed (so one run reports both), but
 * only when the value is an object at all.
 */
export const whenObject = {
  when: (payload: { value: unknown }) =>
    typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value),
};
