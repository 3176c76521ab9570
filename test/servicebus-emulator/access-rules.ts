/**
 * Namespace-level shared access rules. The default is the Microsoft emulator's, so connection strings written for it
 * work here unchanged.
 */
export type AccessRight = "Manage" | "Send" | "Listen";

export interface SharedAccessRule {
  name: string;
  key: string;
  rights: readonly AccessRight[];
}

export const DEFAULT_RULE: SharedAccessRule = {
  name: "RootManageSharedAccessKey",
  key: "SAS_KEY_VALUE",
  rights: ["Manage", "Send", "Listen"],
};

/** Manage implies Send and Listen, as on the service. */
export function grants(rights: readonly AccessRight[], needed: AccessRight): boolean {
  return rights.includes(needed) || rights.includes("Manage");
}

export class AccessRules {
  private readonly byName = new Map<string, SharedAccessRule>();

  constructor(rules: readonly SharedAccessRule[]) {
    for (const rule of rules) {
      if (this.byName.has(rule.name)) throw new Error(`duplicate shared access rule ${rule.name}`);
      this.byName.set(rule.name, rule);
    }
  }

  find(name: string): SharedAccessRule | undefined {
    return this.byName.get(name);
  }

  get(name: string): SharedAccessRule {
    const rule = this.byName.get(name);
    if (!rule) throw new Error(`no shared access rule named ${name}`);
    return rule;
  }

  get all(): SharedAccessRule[] {
    return [...this.byName.values()];
  }
}
