// The steps of one long end-to-end scenario as named subtests in the same VS Code session, so a
// failure names the behaviour that broke. Each step builds on the ones before: after a failure the
// scenario stops there (its parent test fails naming the step) instead of failing on in later steps.
import type { TestContext } from "node:test";

export type Step = (name: string, body: () => Promise<void>) => Promise<void>;

export function stepsOf(t: TestContext): Step {
    return async (name, body) => {
        let failure: unknown;
        await t.test(name, async () => {
            try {
                await body();
            } catch (error) {
                failure = error;
                throw error;
            }
        });
        if (failure !== undefined)
            throw new Error(`the scenario stopped at its failed step "${name}"`, {
                cause: failure,
            });
    };
}
