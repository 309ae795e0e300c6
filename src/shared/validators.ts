import { Length, Matches, ValidateBy } from 'class-validator';

/** A name or label must say something: one that is blank once trimmed is refused at the edge. */
export function NotBlank(): PropertyDecorator {
  return Matches(/\S/, { message: 'must not be blank' });
}

/**
 * What a name shown to other people (or in the audit trail) must not hold: control characters
 * (C0, DEL, C1), line and paragraph separators, bidirectional marks and overrides (which can make
 * "admin" of "nimda"), and unpaired UTF-16 surrogates (invalid text, which breaks logs and JSON).
 */
const UNSAFE_IN_TEXT = /[\p{Cc}\u2028\u2029\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function isSafeText(value: string): boolean {
  return !UNSAFE_IN_TEXT.test(value) && !LONE_SURROGATE.test(value);
}

export function SafeText(): PropertyDecorator {
  return ValidateBy({
    name: 'safeText',
    validator: {
      validate: (value: unknown) => typeof value !== 'string' || isSafeText(value),
      defaultMessage: () =>
        'must not contain control characters, bidirectional overrides or unpaired surrogates',
    },
  });
}

/**
 * Text people read (a name, a reason): 1 to `max` characters, not blank, no unsafe characters.
 * Stored through cleanName.
 */
export function Text(max: number): PropertyDecorator {
  return (target, key) => {
    Length(1, max, { message: `must be 1 to ${max} characters` })(target, key);
    NotBlank()(target, key);
    SafeText()(target, key);
  };
}

/** A display name. */
export function Name(): PropertyDecorator {
  return Text(100);
}

/** How names are stored: trimmed, and NFC-normalised so one name has one form (and one look). */
export function cleanName(name: string): string {
  return name.trim().normalize('NFC');
}
