import {
  FEW_CONNECTIONS,
  HEAP_GROWING_PERCENT,
  MANY_CONNECTIONS,
  heapGrowthFollowing,
  operatorChoseGrowth,
} from '../src/modules/live/heap-growth';

describe("the heap's growth follows the connections held", () => {
  const follow = (operatorChose = false) => {
    const set: number[] = [];
    return { set, follow: heapGrowthFollowing((percent) => set.push(percent), operatorChose) };
  };

  it('leaves V8 its own choice until the instance holds MANY_CONNECTIONS, then lets the heap grow by its live size again', () => {
    const { set, follow: count } = follow();
    count(0);
    count(MANY_CONNECTIONS - 1);
    expect(set).toEqual([]);
    count(MANY_CONNECTIONS);
    expect(set).toEqual([HEAP_GROWING_PERCENT]);
    count(MANY_CONNECTIONS * 5);
    expect(set).toEqual([HEAP_GROWING_PERCENT]);
  });

  it('gives the choice back to V8 below FEW_CONNECTIONS only, so a count between the two does not flap', () => {
    const { set, follow: count } = follow();
    count(MANY_CONNECTIONS);
    count(FEW_CONNECTIONS);
    count(MANY_CONNECTIONS - 1);
    expect(set).toEqual([HEAP_GROWING_PERCENT]);
    count(FEW_CONNECTIONS - 1);
    expect(set).toEqual([HEAP_GROWING_PERCENT, 0]);
    count(FEW_CONNECTIONS - 1);
    count(FEW_CONNECTIONS);
    expect(set).toEqual([HEAP_GROWING_PERCENT, 0]);
    count(MANY_CONNECTIONS);
    expect(set).toEqual([HEAP_GROWING_PERCENT, 0, HEAP_GROWING_PERCENT]);
  });

  it('never touches a growing factor the operator started the process with', () => {
    const { set, follow: count } = follow(true);
    count(MANY_CONNECTIONS * 5);
    count(0);
    expect(set).toEqual([]);
    expect(operatorChoseGrowth(['--heap-growing-percent=30', 'dist/main.js'])).toBe(true);
    expect(operatorChoseGrowth(['--heap_growing_percent=30'])).toBe(true);
    expect(operatorChoseGrowth(['--max-old-space-size=512', '--inspect'])).toBe(false);
  });
});
