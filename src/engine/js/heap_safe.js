// Stateful engines only, evaluated after bootstrap.js into the startup
// snapshot: built-ins whose objects V8 cannot put into a heap snapshot are
// replaced by equivalents made of plain JS objects. V8 aborts the process
// (a CHECK failure, not an exception) when a heap it snapshots still holds
// one of them, so one `const nf = new Intl.NumberFormat()` at the top level
// of a script used to kill the worker, and lose the execution, at the end of
// every stateful run.
//
// - Intl constructors: an Intl object wraps an ICU object that lives outside
//   V8's heap. Each wrapper keeps the arguments its native object was made
//   from (the options as the native constructor read them) and makes that
//   object again when a method needs it. At most MAX_HOLDING native objects
//   are kept at a time (the oldest is dropped, to be remade if used again),
//   and the engine calls `Symbol.for("mcp-v8.releaseNatives")` before every
//   snapshot, dropping all of them; a resumed heap remakes each on first
//   use. `Intl.v8BreakIterator`, V8's own and non-standard (Deno drops it
//   too), cannot be remade (its methods change its state) and is removed.
// - FinalizationRegistry: V8 cannot snapshot a registry once a registered
//   object has died. This one keeps no cells and never calls its cleanup
//   callback, which the language allows (cleanup is never guaranteed).
"use strict";

((globalThis) => {
  const ReflectApply = Reflect.apply;
  const ReflectConstruct = Reflect.construct;
  const ReflectGet = Reflect.get;
  const ReflectOwnKeys = Reflect.ownKeys;
  const ObjectDefineProperty = Object.defineProperty;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const ObjectFreeze = Object.freeze;
  const ArrayIsArray = Array.isArray;
  const SymbolIterator = Symbol.iterator;
  const SymbolKeyFor = Symbol.keyFor;
  const SymbolToStringTag = Symbol.toStringTag;
  const SymbolFor = Symbol.for;
  const TypeErrorCtor = TypeError;
  const ProxyCtor = Proxy;
  const WeakMapCtor = WeakMap;
  const SetCtor = Set;
  const uncurryThis = (fn) => (self, ...args) => ReflectApply(fn, self, args);
  const WeakMapPrototypeGet = uncurryThis(WeakMap.prototype.get);
  const WeakMapPrototypeSet = uncurryThis(WeakMap.prototype.set);
  const WeakMapPrototypeHas = uncurryThis(WeakMap.prototype.has);
  const WeakMapPrototypeDelete = uncurryThis(WeakMap.prototype.delete);
  const SetPrototypeAdd = uncurryThis(Set.prototype.add);
  const SetPrototypeDelete = uncurryThis(Set.prototype.delete);
  const SetPrototypeGetSize = uncurryThis(Object.getOwnPropertyDescriptor(Set.prototype, "size").get);
  const SetPrototypeClear = uncurryThis(Set.prototype.clear);
  const SetPrototypeValues = uncurryThis(Set.prototype.values);
  const SetIteratorNext = uncurryThis(Object.getPrototypeOf(new Set().values()).next);
  const ArrayPrototypePush = uncurryThis(Array.prototype.push);
  const ArrayPrototypeValues = uncurryThis(Array.prototype.values);
  const StringCtor = String;

  const Intl = globalThis.Intl;
  const nativeGetCanonicalLocales = Intl.getCanonicalLocales;

  // --- Intl ---------------------------------------------------------------

  // Wrapper object -> { make, native, functions }: `make` builds the native
  // object, `native` caches it until the next snapshot, `functions` caches
  // the functions the `format`/`compare` getters hand out.
  const states = new WeakMapCtor();
  // The states whose `native` is set, oldest first: bounded, so that code
  // making a formatter per call does not keep every ICU object it made alive
  // until the snapshot.
  const holding = new SetCtor();
  const MAX_HOLDING = 64;
  // The wrapper of Intl.Locale, to recognise its objects among arguments.
  let LocaleWrapper;

  function stateOf(object, kind, member) {
    const state = typeof object === "object" && object !== null ? WeakMapPrototypeGet(states, object) : undefined;
    if (state === undefined || state.kind !== kind) {
      throw new TypeErrorCtor(`Method Intl.${kind}.prototype.${member} called on incompatible receiver`);
    }
    return state;
  }

  function hold(state, native) {
    state.native = native;
    SetPrototypeAdd(holding, state);
    if (SetPrototypeGetSize(holding) > MAX_HOLDING) {
      const oldest = SetIteratorNext(SetPrototypeValues(holding)).value;
      oldest.native = undefined;
      SetPrototypeDelete(holding, oldest);
    }
    return native;
  }

  function nativeOf(state) {
    return state.native === undefined ? hold(state, state.make()) : state.native;
  }

  // A wrapped Locale stands for its tag wherever a locale is accepted (the
  // native constructors only recognise their own Locale objects).
  function tagOf(value) {
    if (typeof value === "object" && value !== null && WeakMapPrototypeHas(states, value)) {
      const state = WeakMapPrototypeGet(states, value);
      if (state.kind === "Locale") return StringCtor(nativeOf(state));
    }
    return value;
  }

  // The locale list as the native constructors would canonicalise it, so a
  // later change to the caller's array does not change the remade object.
  function localeList(locales) {
    if (locales === undefined) return undefined;
    if (ArrayIsArray(locales)) {
      const tags = [];
      for (let i = 0; i < locales.length; i++) {
        if (i in locales) ArrayPrototypePush(tags, tagOf(locales[i]));
      }
      return nativeGetCanonicalLocales(tags);
    }
    return nativeGetCanonicalLocales(tagOf(locales));
  }

  // Options pass to the native constructor through a proxy that records each
  // value read; the native object is remade from that record.
  function recordedOptions(options) {
    if (typeof options !== "object" || options === null) return { passed: options, record: options };
    const record = { __proto__: null };
    const passed = new ProxyCtor(options, {
      // The options object itself as `this` for getters, as natively.
      get(target, key) {
        const value = ReflectGet(target, key);
        record[key] = value;
        return value;
      },
    });
    return { passed, record };
  }

  function nameAndLength(target, name, length) {
    ObjectDefineProperty(target, "name", { value: name, configurable: true });
    ObjectDefineProperty(target, "length", { value: length, configurable: true });
    return target;
  }

  // Results that are themselves Intl objects are wrapped too.
  const wrapResult = {
    __proto__: null,
    "Locale.maximize": (native) => new LocaleWrapper(StringCtor(native)),
    "Locale.minimize": (native) => new LocaleWrapper(StringCtor(native)),
    "Segmenter.segment": (native, state, args) => makeSegments(state, args[0], native),
  };

  function wrapIntl(kind, callableWithoutNew) {
    const Native = Intl[kind];
    if (typeof Native !== "function") return undefined;
    const Wrapper = function (first, options) {
      if (new.target === undefined) {
        if (callableWithoutNew) return ReflectConstruct(Wrapper, [first, options]);
        throw new TypeErrorCtor(`Constructor Intl.${kind} requires 'new'`);
      }
      let leading = kind === "Locale" ? tagOf(first) : localeList(first);
      const recorded = recordedOptions(options);
      let record = recorded.record;
      const native = ReflectConstruct(Native, [leading, recorded.passed]);
      // Defaults taken from the process (its locale, its time zone) are
      // made explicit: a heap may resume on another host.
      if (kind !== "Locale") {
        const resolved = ReflectApply(Native.prototype.resolvedOptions, native, []);
        if (leading === undefined) leading = [resolved.locale];
        if (kind === "DateTimeFormat" && record === undefined) {
          record = { __proto__: null, timeZone: resolved.timeZone };
        } else if (kind === "DateTimeFormat" && typeof record === "object" && record !== null &&
            record.timeZone === undefined) {
          record.timeZone = resolved.timeZone;
        }
      }
      const state = {
        kind,
        make: () => ReflectConstruct(Native, [leading, record]),
        native: undefined,
        functions: { __proto__: null },
      };
      hold(state, native);
      WeakMapPrototypeSet(states, this, state);
    };
    nameAndLength(Wrapper, Native.name, Native.length);
    const proto = Wrapper.prototype;
    const nativeProto = Native.prototype;
    for (const key of ReflectOwnKeys(nativeProto)) {
      if (key === "constructor") continue;
      const descriptor = ObjectGetOwnPropertyDescriptor(nativeProto, key);
      if (key === SymbolToStringTag) {
        ObjectDefineProperty(proto, key, descriptor);
        continue;
      }
      const member = StringCtor(key);
      if (descriptor.get !== undefined) {
        const nativeGetter = descriptor.get;
        // Method and accessor syntax throughout: like the built-ins they
        // replace, these functions are not constructors.
        const getter = ObjectGetOwnPropertyDescriptor({
          get [key]() {
            const state = stateOf(this, kind, member);
            const value = ReflectApply(nativeGetter, nativeOf(state), []);
            if (typeof value !== "function") return value;
            // `format` and `compare` hand out a function bound to the native
            // object; this one finds the native object when called.
            let cached = state.functions[key];
            if (cached === undefined) {
              cached = nameAndLength(
                (...args) => ReflectApply(ReflectApply(nativeGetter, nativeOf(state), []), undefined, args),
                "",
                value.length,
              );
              state.functions[key] = cached;
            }
            return cached;
          },
        }, key).get;
        nameAndLength(getter, `get ${member}`, 0);
        ObjectDefineProperty(proto, key, { get: getter, enumerable: descriptor.enumerable, configurable: true });
      } else if (typeof descriptor.value === "function") {
        const method = descriptor.value;
        const wrap = wrapResult[`${kind}.${member}`];
        const forward = {
          [key](...args) {
            const state = stateOf(this, kind, member);
            const result = ReflectApply(method, nativeOf(state), args);
            return wrap === undefined ? result : wrap(result, state, args);
          },
        }[key];
        nameAndLength(forward, method.name, method.length);
        ObjectDefineProperty(proto, key, { value: forward, writable: true, enumerable: false, configurable: true });
      }
    }
    ObjectDefineProperty(Wrapper, "prototype", { writable: false, enumerable: false, configurable: false });
    for (const key of ReflectOwnKeys(Native)) {
      if (key === "prototype" || key === "length" || key === "name") continue;
      const descriptor = ObjectGetOwnPropertyDescriptor(Native, key);
      if (key === "supportedLocalesOf") {
        const native = descriptor.value;
        descriptor.value = nameAndLength({
          supportedLocalesOf(locales, options) {
            return ReflectApply(native, Native, [localeList(locales), options]);
          },
        }.supportedLocalesOf, native.name, native.length);
      }
      ObjectDefineProperty(Wrapper, key, descriptor);
    }
    const slot = ObjectGetOwnPropertyDescriptor(Intl, kind);
    slot.value = Wrapper;
    ObjectDefineProperty(Intl, kind, slot);
    return Wrapper;
  }

  // A Segments object keeps the string it was made for and its native
  // Segments like any Intl object, remade from the segmenter on demand;
  // iteration reads all segments at once, into plain objects.
  const SegmentsPrototype = {
    containing(index) {
      return nativeSegments(this, "containing").containing(index);
    },
    [SymbolIterator]() {
      const all = [];
      for (const segment of nativeSegments(this, "[@@iterator]")) ArrayPrototypePush(all, segment);
      return ArrayPrototypeValues(all);
    },
  };
  const segmentsStates = new WeakMapCtor();
  function nativeSegments(segments, member) {
    const state = typeof segments === "object" && segments !== null
      ? WeakMapPrototypeGet(segmentsStates, segments)
      : undefined;
    if (state === undefined) {
      throw new TypeErrorCtor(`Method %Segments.prototype%.${member} called on incompatible receiver`);
    }
    return nativeOf(state);
  }
  function makeSegments(segmenter, input, native) {
    // The string as the native method read it: a string stays as it is, and
    // anything else is converted once more only after the native call has
    // shown that converting it works.
    const string = typeof input === "string" ? input : `${input}`;
    const segments = { __proto__: SegmentsPrototype };
    const state = {
      kind: "Segments",
      make: () => ReflectApply(NativeSegment, nativeOf(segmenter), [string]),
      native: undefined,
      functions: { __proto__: null },
    };
    hold(state, native);
    WeakMapPrototypeSet(segmentsStates, segments, state);
    return segments;
  }

  delete Intl.v8BreakIterator;
  const NativeSegment = Intl.Segmenter?.prototype.segment;
  LocaleWrapper = wrapIntl("Locale", false);
  for (const kind of ["Collator", "DateTimeFormat", "NumberFormat"]) wrapIntl(kind, true);
  for (const kind of ["DisplayNames", "DurationFormat", "ListFormat", "PluralRules", "RelativeTimeFormat", "Segmenter"]) {
    wrapIntl(kind, false);
  }
  if (typeof nativeGetCanonicalLocales === "function") {
    const slot = ObjectGetOwnPropertyDescriptor(Intl, "getCanonicalLocales");
    slot.value = nameAndLength({
      getCanonicalLocales(locales) {
        return localeList(locales) ?? [];
      },
    }.getCanonicalLocales, "getCanonicalLocales", 1);
    ObjectDefineProperty(Intl, "getCanonicalLocales", slot);
  }

  // A constructor left unwrapped would bring the abort back: fail the
  // startup snapshot, loudly, if a newer V8 adds one.
  const wrapped = ["Collator", "DateTimeFormat", "DisplayNames", "DurationFormat", "ListFormat", "Locale",
    "NumberFormat", "PluralRules", "RelativeTimeFormat", "Segmenter"];
  for (const key of ReflectOwnKeys(Intl)) {
    const value = Intl[key];
    if (typeof value === "function" && ObjectGetOwnPropertyDescriptor(value, "prototype") !== undefined &&
        !wrapped.includes(key)) {
      throw new TypeErrorCtor(`heap_safe.js: Intl.${StringCtor(key)} is a constructor it does not wrap`);
    }
  }

  function releaseNatives() {
    const iterator = SetPrototypeValues(holding);
    for (let step = SetIteratorNext(iterator); !step.done; step = SetIteratorNext(iterator)) {
      step.value.native = undefined;
    }
    SetPrototypeClear(holding);
  }

  // --- FinalizationRegistry -------------------------------------------------

  function canBeHeldWeakly(value) {
    return (typeof value === "object" && value !== null) || typeof value === "function" ||
      (typeof value === "symbol" && SymbolKeyFor(value) === undefined);
  }

  const registrations = new WeakMapCtor();
  class FinalizationRegistry {
    constructor(cleanupCallback) {
      if (typeof cleanupCallback !== "function") {
        throw new TypeErrorCtor("FinalizationRegistry: cleanup must be callable");
      }
      WeakMapPrototypeSet(registrations, this, new WeakMapCtor());
    }

    register(target, heldValue, unregisterToken = undefined) {
      const tokens = WeakMapPrototypeGet(registrations, this);
      if (tokens === undefined) throw new TypeErrorCtor("FinalizationRegistry.prototype.register: incompatible receiver");
      if (!canBeHeldWeakly(target)) throw new TypeErrorCtor("FinalizationRegistry.prototype.register: invalid target");
      if (target === heldValue) throw new TypeErrorCtor("FinalizationRegistry.prototype.register: target and holdings must not be same");
      if (unregisterToken !== undefined) {
        if (!canBeHeldWeakly(unregisterToken)) {
          throw new TypeErrorCtor(`FinalizationRegistry.prototype.register: invalid unregister token ${StringCtor(unregisterToken)}`);
        }
        WeakMapPrototypeSet(tokens, unregisterToken, true);
      }
      return undefined;
    }

    unregister(unregisterToken) {
      const tokens = WeakMapPrototypeGet(registrations, this);
      if (tokens === undefined) throw new TypeErrorCtor("FinalizationRegistry.prototype.unregister: incompatible receiver");
      if (!canBeHeldWeakly(unregisterToken)) {
        throw new TypeErrorCtor(`Invalid unregisterToken ('${StringCtor(unregisterToken)}')`);
      }
      return WeakMapPrototypeDelete(tokens, unregisterToken);
    }
  }
  ObjectDefineProperty(FinalizationRegistry.prototype, SymbolToStringTag, {
    value: "FinalizationRegistry",
    configurable: true,
  });
  ObjectDefineProperty(globalThis, "FinalizationRegistry", {
    value: FinalizationRegistry,
    writable: true,
    enumerable: false,
    configurable: true,
  });

  ObjectDefineProperty(globalThis, SymbolFor("mcp-v8.releaseNatives"), {
    value: ObjectFreeze(releaseNatives),
    writable: false,
    enumerable: false,
    configurable: false,
  });
})(globalThis);
