import { Matches } from 'class-validator';

/** A name or label must say something: one that is blank once trimmed is refused at the edge. */
export function NotBlank(): PropertyDecorator {
  return Matches(/\S/, { message: 'must not be blank' });
}
