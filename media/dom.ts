// Building the view's elements: text children only (never HTML), codicons, labelled buttons.

/** Creates an element with attributes and children (strings become text, never HTML). */
export function h<K extends keyof HTMLElementTagNameMap>(
    tag: K,
    attributes: Record<string, string> = {},
    ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
    const element = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
    element.append(...children);
    return element;
}

export function icon(name: string): HTMLElement {
    return h("span", { class: `codicon codicon-${name}`, "aria-hidden": "true" });
}

export function button(
    label: string,
    iconName: string,
    attributes: Record<string, string> = {},
    text?: string,
): HTMLButtonElement {
    return h(
        "button",
        { type: "button", "aria-label": label, title: label, ...attributes },
        icon(iconName),
        ...(text ? [h("span", {}, text)] : []),
    );
}
