// Medians with their range: single rounds on a shared machine vary, the median of several does not.
export interface Spread {
    median: number;
    min: number;
    max: number;
    samples: number;
}

export function spread(values: readonly number[]): Spread | undefined {
    const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
    if (finite.length === 0) return undefined;
    const middle = Math.floor(finite.length / 2);
    const median =
        finite.length % 2 === 1 ? finite[middle] : (finite[middle - 1] + finite[middle]) / 2;
    return { median, min: finite[0], max: finite[finite.length - 1], samples: finite.length };
}
