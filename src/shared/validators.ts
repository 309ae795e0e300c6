import { Length, Matches } from 'class-validator';

/** A name or label must say something: one that is blank once trimmed is refused at the edge. */
export function NotBlank(): PropertyDecorator {
  return Matches(/\S/, { message: 'must not be blank' });
}

/** A display name: 1 to 100 characters, not blank. */
export function Name(): PropertyDecorator {
  return (target, key) => {
    Length(1, 100, { message: 'must be 1 to 100 characters' })(target, key);
    NotBlank()(target, key);
  };
}
