// CPU lists: parsing, formatting and selection (pure functions).
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { formatCpuList, parseCpuList, selectCpus } from "../src/cpu";

describe("cpu lists", () => {
  it("parses ranges and singles, sorted and unique", () => {
    assert.deepEqual(parseCpuList("0-3,6"), [0, 1, 2, 3, 6]);
    assert.deepEqual(parseCpuList("6,1,1-2"), [1, 2, 6]);
  });
  it("formats runs back into ranges", () => {
    assert.equal(formatCpuList([0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    assert.equal(formatCpuList([3]), "3");
  });
  it("selects --cpus inside the allowed set, then the first --workers", () => {
    assert.deepEqual(selectCpus([0, 1, 2, 3], undefined, undefined), [0, 1, 2, 3]);
    assert.deepEqual(selectCpus([0, 1, 2, 3], "1-3", 2), [1, 2]);
    assert.throws(() => selectCpus([0, 1], "2", undefined), /CPU 2 is not allowed for this process; allowed: 0-1/);
    assert.throws(() => selectCpus([0, 1], undefined, 3), /only 2 CPU\(s\)/);
  });
});
