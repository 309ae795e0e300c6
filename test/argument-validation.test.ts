import { MaxLength } from 'class-validator';
import { ArgumentValidationError } from 'type-graphql';
import { validateArgument } from '../src/graphql/schema';

// How an argument is validated (the schema's validateFn): the operations' own tests show it for
// input objects; a list of them has no validating class in today's schema, so it is shown here.
class Named {
  @MaxLength(3)
  name: string;

  constructor(name: string) {
    this.name = name;
  }
}

describe('validateArgument', () => {
  it("checks an input object against its class's rules", async () => {
    await expect(validateArgument(new Named('abc'))).resolves.toBeUndefined();
    const refused = await validateArgument(new Named('abcd')).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ArgumentValidationError);
    expect((refused as ArgumentValidationError).extensions.validationErrors).toEqual([
      expect.objectContaining({ property: 'name' }),
    ]);
  });

  it('checks each object of a list, and refuses the list for one bad item', async () => {
    await expect(validateArgument([new Named('a'), new Named('b')])).resolves.toBeUndefined();
    await expect(validateArgument([new Named('a'), new Named('abcd')])).rejects.toBeInstanceOf(
      ArgumentValidationError,
    );
  });

  it('leaves scalars, null and their lists alone', async () => {
    for (const value of [null, undefined, 'abcd', 4, true, ['abcd', null]])
      await expect(validateArgument(value)).resolves.toBeUndefined();
  });

  it('leaves out a property the client left out, as type-graphql does', async () => {
    await expect(validateArgument(Object.create(Named.prototype))).resolves.toBeUndefined();
  });
});
