// mcp-v8 bootstrap: evaluated once into the startup snapshot.
//
// Installs what agent code expects from a JS runtime (console, timers, atob,
// btoa, structuredClone, TextEncoder, TextDecoder, crypto, performance) and
// the result encoder the Rust side calls after an execution. Runs as a
// classic script at snapshot time, so everything happens synchronously at
// top level and no timer may be left pending.
(function () {
  "use strict";

  // --- Capture deno_core ---------------------------------------------------
  // User code must not reach the ops, so everything below uses these locals.
  //
  // `globalThis.Deno` itself cannot be deleted here: deno_core reads
  // `Deno.core` from the global every time it creates a runtime from the
  // snapshot (and panics if it is missing). The engine deletes it from each
  // runtime right after creating it (`hide_internals` in engine/mod.rs).
  // `__bootstrap` is not needed after this point.
  const core = globalThis.Deno.core;
  const opConsole = core.ops.op_mcp_console;
  const coreCreateTimer = core.createTimer;
  const coreCancelTimer = core.cancelTimer;
  // V8 introspection, for Node-accurate output; optional so that the file
  // also runs under a test harness without them.
  const coreIsPromise = typeof core.isPromise === "function" ? core.isPromise : undefined;
  const coreGetPromiseDetails = typeof core.getPromiseDetails === "function" ? core.getPromiseDetails : undefined;
  const coreGetProxyDetails = typeof core.getProxyDetails === "function" ? core.getProxyDetails : undefined;
  delete globalThis.__bootstrap;

  // --- Captured intrinsics ------------------------------------------------
  // User code may replace prototype methods later. The inspector and the
  // encoder run after it, so they use these captured copies instead.
  const ReflectApply = Reflect.apply;
  const uncurryThis = (fn) => (self, ...args) => ReflectApply(fn, self, args);

  const ObjectDefineProperty = Object.defineProperty;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectIs = Object.is;
  const ObjectKeys = Object.keys;
  const ReflectOwnKeys = Reflect.ownKeys;
  const ObjectPrototypeHasOwnProperty = uncurryThis(Object.prototype.hasOwnProperty);
  const ArrayIsArray = Array.isArray;
  const ArrayPrototypeSort = uncurryThis(Array.prototype.sort);
  const JSONStringify = JSON.stringify;
  const MathFloor = Math.floor;
  const MathCeil = Math.ceil;
  const MathMax = Math.max;
  const MathMin = Math.min;
  const MathRound = Math.round;
  const MathSqrt = Math.sqrt;
  const NumberParseInt = Number.parseInt;
  const NumberParseFloat = Number.parseFloat;
  const DateNow = Date.now;
  const SymbolFor = Symbol.for;
  const SymbolToStringTag = Symbol.toStringTag;
  const ErrorCaptureStackTrace = Error.captureStackTrace;
  const ErrorIsError = Error.isError;
  const StringFromCharCode = String.fromCharCode;

  const StringPrototypeCharCodeAt = uncurryThis(String.prototype.charCodeAt);
  const StringPrototypeIndexOf = uncurryThis(String.prototype.indexOf);
  const StringPrototypeSlice = uncurryThis(String.prototype.slice);
  const StringPrototypeRepeat = uncurryThis(String.prototype.repeat);
  const StringPrototypeToUpperCase = uncurryThis(String.prototype.toUpperCase);
  const StringPrototypeToLowerCase = uncurryThis(String.prototype.toLowerCase);
  const StringPrototypeTrim = uncurryThis(String.prototype.trim);
  const NumberPrototypeToString = uncurryThis(Number.prototype.toString);
  const NumberPrototypeToFixed = uncurryThis(Number.prototype.toFixed);
  const RegExpPrototypeExec = uncurryThis(RegExp.prototype.exec);
  const RegExpPrototypeToString = uncurryThis(RegExp.prototype.toString);
  const FunctionPrototypeToString = uncurryThis(Function.prototype.toString);
  const SymbolPrototypeToString = uncurryThis(Symbol.prototype.toString);
  const ErrorPrototypeToString = uncurryThis(Error.prototype.toString);
  const DatePrototypeGetTime = uncurryThis(Date.prototype.getTime);
  const DatePrototypeToISOString = uncurryThis(Date.prototype.toISOString);

  const MapPrototypeGet = uncurryThis(Map.prototype.get);
  const MapPrototypeSet = uncurryThis(Map.prototype.set);
  const MapPrototypeHas = uncurryThis(Map.prototype.has);
  const MapPrototypeDelete = uncurryThis(Map.prototype.delete);
  const MapPrototypeEntries = uncurryThis(Map.prototype.entries);
  const MapIteratorNext = uncurryThis(ObjectGetPrototypeOf(new Map().entries()).next);
  const SetPrototypeValues = uncurryThis(Set.prototype.values);
  const SetIteratorNext = uncurryThis(ObjectGetPrototypeOf(new Set().values()).next);

  // Getters that double as brand checks: they throw for the wrong receiver.
  const getter = (proto, name) => uncurryThis(ObjectGetOwnPropertyDescriptor(proto, name).get);
  const MapPrototypeGetSize = getter(Map.prototype, "size");
  const SetPrototypeGetSize = getter(Set.prototype, "size");
  const ArrayBufferPrototypeGetByteLength = getter(ArrayBuffer.prototype, "byteLength");
  const DataViewPrototypeGetByteLength = getter(DataView.prototype, "byteLength");
  const DataViewPrototypeGetByteOffset = getter(DataView.prototype, "byteOffset");
  const DataViewPrototypeGetBuffer = getter(DataView.prototype, "buffer");
  const RegExpPrototypeGetSource = getter(RegExp.prototype, "source");
  const TypedArrayPrototype = ObjectGetPrototypeOf(Uint8Array.prototype);
  const TypedArrayPrototypeGetTag = getter(TypedArrayPrototype, SymbolToStringTag);
  const TypedArrayPrototypeGetLength = getter(TypedArrayPrototype, "length");
  const WeakMapPrototypeHas = uncurryThis(WeakMap.prototype.has);
  const WeakSetPrototypeHas = uncurryThis(WeakSet.prototype.has);

  const ObjectPrototype = Object.prototype;
  const ArrayPrototype = Array.prototype;
  const PromisePrototype = Promise.prototype;
  const ErrorPrototype = Error.prototype;
  const RegExpPrototype = RegExp.prototype;
  const AsyncFunctionPrototype = ObjectGetPrototypeOf(async function () {});
  const GeneratorFunctionPrototype = ObjectGetPrototypeOf(function* () {});
  const AsyncGeneratorFunctionPrototype = ObjectGetPrototypeOf(async function* () {});

  // Boxed primitives: `valueOf` of each wrapper type is its brand check.
  const boxedTypes = [
    ["Number", uncurryThis(Number.prototype.valueOf)],
    ["String", uncurryThis(String.prototype.valueOf)],
    ["Boolean", uncurryThis(Boolean.prototype.valueOf)],
    ["BigInt", uncurryThis(BigInt.prototype.valueOf)],
    ["Symbol", uncurryThis(Symbol.prototype.valueOf)],
  ];

  // Prototypes whose toString is "not interesting" for `%s` (Node inspects
  // such objects instead of calling String() on them).
  const builtinToStringHolders = [
    Object.prototype, Array.prototype, Error.prototype, Function.prototype,
    Date.prototype, RegExp.prototype, Number.prototype, String.prototype,
    Boolean.prototype, Symbol.prototype, BigInt.prototype, TypedArrayPrototype,
  ];

  // --- Small helpers on our own arrays and strings ----------------------
  function push(array, item) {
    array[array.length] = item;
  }

  function join(array, separator) {
    let result = "";
    for (let i = 0; i < array.length; i++) {
      result += i === 0 ? array[i] : separator + array[i];
    }
    return result;
  }

  function includes(array, item) {
    for (let i = 0; i < array.length; i++) {
      if (array[i] === item) return true;
    }
    return false;
  }

  function contains(text, part) {
    return StringPrototypeIndexOf(text, part) !== -1;
  }

  function startsWith(text, prefix) {
    return StringPrototypeSlice(text, 0, prefix.length) === prefix;
  }

  function endsWith(text, suffix) {
    return suffix.length <= text.length &&
      StringPrototypeSlice(text, text.length - suffix.length) === suffix;
  }

  function spaces(count) {
    return StringPrototypeRepeat(" ", count);
  }

  function padStart(text, width) {
    return text.length >= width ? text : spaces(width - text.length) + text;
  }

  function padEnd(text, width) {
    return text.length >= width ? text : text + spaces(width - text.length);
  }

  // Prefixes every line after the first with `indentation`.
  function indentLines(text, indentation) {
    let result = "";
    let start = 0;
    let newline = StringPrototypeIndexOf(text, "\n");
    while (newline !== -1) {
      result += StringPrototypeSlice(text, start, newline + 1) + indentation;
      start = newline + 1;
      newline = StringPrototypeIndexOf(text, "\n", start);
    }
    return result + StringPrototypeSlice(text, start);
  }

  function plural(count, noun) {
    return `${count} ${noun}${count === 1 ? "" : "s"}`;
  }

  // A message for an exception we caught, without trusting the thrown value.
  function describeThrown(error) {
    try {
      if (error !== null && typeof error === "object" && typeof error.message === "string") {
        return error.message;
      }
      return String(error);
    } catch {
      return "unknown error";
    }
  }

  // --- inspect: primitives ------------------------------------------------
  const kMaxArrayItems = 100;
  const kMaxStringLength = 10000;
  // What inspect shows of long arrays, maps, sets and strings: Node's
  // limits per list and string for the console. While `whole` runs, there
  // is none per list or string, only budgets for the whole value.
  let maxArrayItems = kMaxArrayItems;
  let maxStringLength = kMaxStringLength;
  // Items (of every list) and string characters left to show.
  let itemBudget = Infinity;
  let charBudget = Infinity;

  // Runs `show` with inspect's per-list and per-string limits lifted, so
  // that a result or an uncaught exception is not cut at 100 items as a
  // console line is; `items` and `chars` bound the value as a whole. The
  // text is built inside the execution's heap: a value that fits there
  // (a typed array of millions of bytes) must not fail for its display.
  function whole(show, items, chars) {
    const saved = [maxArrayItems, maxStringLength, itemBudget, charBudget];
    maxArrayItems = Infinity;
    maxStringLength = Infinity;
    itemBudget = items;
    charBudget = chars;
    try {
      return show();
    } finally {
      maxArrayItems = saved[0];
      maxStringLength = saved[1];
      itemBudget = saved[2];
      charBudget = saved[3];
    }
  }

  // Whether a list that shows `shown` items may show one more (and counts
  // it against the budget).
  function takeItem(shown) {
    if (shown >= maxArrayItems || itemBudget <= 0) return false;
    itemBudget--;
    return true;
  }
  const kBreakLength = 80;
  const kCompact = 3;
  const kDefaultDepth = 2;
  const kWholeFallbackDepth = 64;
  // Budgets of a result shown whole (its text is built in the execution's
  // heap, 8 MiB by default), and of an uncaught exception (whose text is
  // cut at 64 KiB anyway).
  const kResultItems = 2000;
  const kResultChars = 256 * 1024;
  const kErrorItems = 1000;
  const kErrorChars = 64 * 1024;
  const kHoleScanBudget = 1000000;
  const kExtraKeysLengthLimit = 10000;
  const identifierPattern = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
  const arrayIndexPattern = /^(?:0|[1-9][0-9]*)$/;

  const escapes = {
    __proto__: null, 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 92: "\\\\",
  };

  // Node's quote choice: single quotes, unless the text contains them.
  function pickQuote(text) {
    if (!contains(text, "'")) return "'";
    if (!contains(text, '"')) return '"';
    if (!contains(text, "`") && !contains(text, "${")) return "`";
    return "'";
  }

  function escapeChar(code, quoteCode) {
    if (code === quoteCode) return "\\" + StringFromCharCode(code);
    if (escapes[code] !== undefined) return escapes[code];
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) {
      const hex = StringPrototypeToUpperCase(NumberPrototypeToString(code, 16));
      return hex.length < 2 ? `\\x0${hex}` : `\\x${hex}`;
    }
    return undefined;
  }

  function quoteString(text) {
    let trailer = "";
    const limit = MathMin(maxStringLength, MathMax(charBudget, 0));
    if (text.length > limit) {
      trailer = `... ${plural(text.length - limit, "more character")}`;
      text = StringPrototypeSlice(text, 0, limit);
    }
    charBudget -= text.length;
    const quote = pickQuote(text);
    const quoteCode = StringPrototypeCharCodeAt(quote, 0);
    let result = "";
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const escaped = escapeChar(StringPrototypeCharCodeAt(text, i), quoteCode);
      if (escaped !== undefined) {
        result += StringPrototypeSlice(text, start, i) + escaped;
        start = i + 1;
      }
    }
    result += StringPrototypeSlice(text, start);
    return quote + result + quote + trailer;
  }

  function formatNumber(value) {
    return ObjectIs(value, -0) ? "-0" : `${value}`;
  }

  function formatPrimitive(value) {
    switch (typeof value) {
      case "string": return quoteString(value);
      case "number": return formatNumber(value);
      case "bigint": return `${value}n`;
      case "boolean": return value ? "true" : "false";
      case "symbol": return SymbolPrototypeToString(value);
      default: return "undefined";
    }
  }

  // A property key as Node prints it in `{ key: value }`.
  function formatKey(key, enumerable) {
    if (typeof key === "symbol") return `[${SymbolPrototypeToString(key)}]`;
    if (!enumerable) return `[${key}]`;
    if (RegExpPrototypeExec(identifierPattern, key) !== null) return key;
    return quoteString(key);
  }

  // --- inspect: object classification -----------------------------------
  // Reads only data properties along the prototype chain, so no user getter
  // runs while we look for a name.
  function ownDataValue(object, key) {
    const desc = ObjectGetOwnPropertyDescriptor(object, key);
    return desc !== undefined && ObjectPrototypeHasOwnProperty(desc, "value") ? desc.value : undefined;
  }

  function ownStringValue(object, key) {
    const value = ownDataValue(object, key);
    return typeof value === "string" ? value : "";
  }

  // The name of the nearest constructor, starting above the object itself
  // (so `Foo.prototype` prints as a plain object). null = null prototype.
  function getConstructorName(object) {
    let proto = ObjectGetPrototypeOf(object);
    while (proto !== null) {
      const ctor = ownDataValue(proto, "constructor");
      if (typeof ctor === "function") {
        const name = ownStringValue(ctor, "name");
        if (name !== "") return name;
      }
      proto = ObjectGetPrototypeOf(proto);
    }
    return null;
  }

  function getToStringTag(ctx, object, constructor) {
    let holder = object;
    while (holder !== null) {
      const desc = ObjectGetOwnPropertyDescriptor(holder, SymbolToStringTag);
      if (desc !== undefined) {
        // An own enumerable tag is printed as a key anyway.
        if (holder === object && (desc.enumerable || ctx.showHidden)) return "";
        const tag = desc.value;
        return typeof tag === "string" && tag !== constructor ? tag : "";
      }
      holder = ObjectGetPrototypeOf(holder);
    }
    return "";
  }

  // "Foo ", "Map(2) ", "Object [Math] ", "[Object: null prototype] ".
  function getPrefix(constructor, tag, fallback, size) {
    if (constructor === null) {
      const tagPart = tag !== "" && tag !== fallback ? ` [${tag}]` : "";
      return `[${fallback}${size}: null prototype]${tagPart} `;
    }
    const tagPart = tag !== "" && tag !== constructor ? ` [${tag}]` : "";
    return `${constructor}${size}${tagPart} `;
  }

  function passes(brandCheck, value) {
    try {
      brandCheck(value);
      return true;
    } catch {
      return false;
    }
  }

  // instanceof without Symbol.hasInstance, which user code could override.
  function inheritsFrom(value, proto) {
    let current = ObjectGetPrototypeOf(value);
    while (current !== null) {
      if (current === proto) return true;
      current = ObjectGetPrototypeOf(current);
    }
    return false;
  }

  function isError(value) {
    if (typeof ErrorIsError === "function") return ErrorIsError(value);
    return inheritsFrom(value, ErrorPrototype);
  }

  function isPromise(value) {
    if (coreIsPromise !== undefined) return coreIsPromise(value);
    return inheritsFrom(value, PromisePrototype);
  }

  function isArrayIndexKey(key) {
    return typeof key === "string" && RegExpPrototypeExec(arrayIndexPattern, key) !== null &&
      +key < 4294967295;
  }

  // Own keys to show as `key: value`. Hidden (non-enumerable) keys only with
  // showHidden, as `[key]`.
  function getDisplayKeys(ctx, value, skipIndices) {
    const all = ReflectOwnKeys(value);
    const keys = [];
    for (let i = 0; i < all.length; i++) {
      const key = all[i];
      if (skipIndices && isArrayIndexKey(key)) continue;
      if (!ctx.showHidden) {
        const desc = ObjectGetOwnPropertyDescriptor(value, key);
        if (desc === undefined || !desc.enumerable) continue;
      }
      push(keys, key);
    }
    return keys;
  }

  function getFunctionBase(fn) {
    let source = "";
    try {
      source = FunctionPrototypeToString(fn);
    } catch {
      // Not all callables have source (e.g. revoked proxies).
    }
    const name = ownStringValue(fn, "name");
    if (startsWith(source, "class") && endsWith(source, "}")) {
      let base = `class ${name || "(anonymous)"}`;
      const parent = ObjectGetPrototypeOf(fn);
      const superName = parent === null ? "" : ownStringValue(parent, "name");
      if (superName !== "") base += ` extends ${superName}`;
      return `[${base}]`;
    }
    const proto = ObjectGetPrototypeOf(fn);
    let type = "Function";
    if (proto === AsyncFunctionPrototype) type = "AsyncFunction";
    else if (proto === GeneratorFunctionPrototype) type = "GeneratorFunction";
    else if (proto === AsyncGeneratorFunctionPrototype) type = "AsyncGeneratorFunction";
    return name === "" ? `[${type} (anonymous)]` : `[${type}: ${name}]`;
  }

  function getErrorBase(ctx, error) {
    let stack;
    try {
      stack = error.stack;
    } catch {
      stack = undefined;
    }
    if (typeof stack !== "string" || stack === "") {
      try {
        stack = ErrorPrototypeToString(error);
      } catch {
        stack = "Error";
      }
    }
    // Errors without frames print as `[Error: msg]`, like Node; except the
    // value an execution failed with (see formatException).
    if (!contains(stack, "\n    at") && ctx.bareError !== error) stack = `[${stack}]`;
    return ctx.indentationLvl === 0 ? stack : indentLines(stack, spaces(ctx.indentationLvl));
  }

  // A "shape" says how one object prints: a base text (functions, errors,
  // dates...), braces, the special entries (elements, map entries) and which
  // own keys follow them.
  function describeObject(ctx, value, constructor, tag) {
    const shape = {
      base: "", open: "{", close: "}", keys: undefined, entries: undefined,
      count: 0, isArrayLike: false, numeric: false,
    };

    if (ArrayIsArray(value)) {
      const length = value.length;
      const prefix = constructor !== "Array" || tag !== "" ? getPrefix(constructor, tag, "Array", `(${length})`) : "";
      shape.open = `${prefix}[`;
      shape.close = "]";
      shape.isArrayLike = true;
      shape.count = length;
      shape.entries = formatArrayEntries;
      shape.keys = length <= kExtraKeysLengthLimit ? getDisplayKeys(ctx, value, true) : [];
      return shape;
    }

    const typedName = TypedArrayPrototypeGetTag(value);
    if (typedName !== undefined) {
      const length = TypedArrayPrototypeGetLength(value);
      shape.open = `${getPrefix(constructor, tag, typedName, `(${length})`)}[`;
      shape.close = "]";
      shape.isArrayLike = true;
      shape.numeric = true;
      shape.count = length;
      shape.entries = formatTypedArrayEntries;
      shape.keys = [];
      return shape;
    }

    shape.keys = getDisplayKeys(ctx, value, false);

    if (passes(MapPrototypeGetSize, value)) {
      shape.count = MapPrototypeGetSize(value);
      shape.open = `${getPrefix(constructor, tag, "Map", `(${shape.count})`)}{`;
      shape.entries = formatMapEntries;
    } else if (passes(SetPrototypeGetSize, value)) {
      shape.count = SetPrototypeGetSize(value);
      shape.open = `${getPrefix(constructor, tag, "Set", `(${shape.count})`)}{`;
      shape.entries = formatSetEntries;
    } else if (typeof value === "function") {
      shape.base = getFunctionBase(value);
    } else if (isError(value)) {
      shape.base = getErrorBase(ctx, value);
      shape.keys = getErrorKeys(value, shape.keys, shape.base);
    } else if (passes(DatePrototypeGetTime, value)) {
      const time = DatePrototypeGetTime(value);
      shape.base = time !== time ? "Invalid Date" : DatePrototypeToISOString(value);
    } else if (value !== RegExpPrototype && passes(RegExpPrototypeGetSource, value)) {
      shape.base = RegExpPrototypeToString(value);
    } else if (passes(ArrayBufferPrototypeGetByteLength, value)) {
      shape.open = `${getPrefix(constructor, tag, "ArrayBuffer", "")}{`;
      shape.entries = () => [`byteLength: ${ArrayBufferPrototypeGetByteLength(value)}`];
      shape.count = 1;
    } else if (passes(DataViewPrototypeGetByteLength, value)) {
      shape.open = `${getPrefix(constructor, tag, "DataView", "")}{`;
      shape.entries = formatDataViewEntries;
      shape.count = 3;
    } else if (isPromise(value)) {
      shape.open = `${getPrefix(constructor, tag, "Promise", "")}{`;
      shape.entries = formatPromiseEntries;
      shape.count = 1;
    } else if (passes((v) => WeakMapPrototypeHas(v, {}), value) || passes((v) => WeakSetPrototypeHas(v, {}), value)) {
      shape.open = `${getPrefix(constructor, tag, "Object", "")}{`;
      shape.entries = () => ["<items unknown>"];
      shape.count = 1;
    } else if (!describeBoxed(value, shape)) {
      shape.open = constructor === "Object" && tag === "" ? "{" : `${getPrefix(constructor, tag, "Object", "")}{`;
    }
    return shape;
  }

  // Boxed primitives print as `[Number: 3]`; a String's indices are skipped.
  function describeBoxed(value, shape) {
    for (let i = 0; i < boxedTypes.length; i++) {
      const type = boxedTypes[i][0];
      const valueOf = boxedTypes[i][1];
      if (!passes(valueOf, value)) continue;
      shape.base = `[${type}: ${formatPrimitive(valueOf(value))}]`;
      if (type === "String") {
        const keys = [];
        for (let k = 0; k < shape.keys.length; k++) {
          const key = shape.keys[k];
          if (key !== "length" && !isArrayIndexKey(key)) push(keys, key);
        }
        shape.keys = keys;
      }
      return true;
    }
    return false;
  }

  // Like Node: drop name/message/stack keys the stack already shows, and
  // add `cause` and AggregateError's `errors` even though they are hidden.
  function getErrorKeys(error, keys, stack) {
    const result = [];
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      const duplicate = (key === "name" || key === "message" || key === "stack") &&
        contains(stack, ownStringValue(error, key));
      if (!duplicate) push(result, key);
    }
    const extras = ["cause", "errors"];
    for (let i = 0; i < extras.length; i++) {
      const key = extras[i];
      if (ObjectPrototypeHasOwnProperty(error, key) && !includes(result, key)) push(result, key);
    }
    return result;
  }

  // --- inspect: entries -----------------------------------------------------
  function formatProperty(ctx, object, recurseTimes, key, isElement) {
    const desc = ObjectGetOwnPropertyDescriptor(object, key);
    let text;
    if (desc === undefined) {
      text = "undefined";
    } else if (ObjectPrototypeHasOwnProperty(desc, "value")) {
      ctx.indentationLvl += 2;
      text = formatValue(ctx, desc.value, recurseTimes);
      ctx.indentationLvl -= 2;
    } else if (desc.get !== undefined) {
      text = desc.set !== undefined ? "[Getter/Setter]" : "[Getter]";
    } else {
      text = desc.set !== undefined ? "[Setter]" : "undefined";
    }
    if (isElement) return text;
    const name = key === "__proto__" ? "['__proto__']" : formatKey(key, desc === undefined || desc.enumerable);
    return `${name}: ${text}`;
  }

  // First own index >= from, or `length`. Gaps are scanned index by index
  // within a budget per array; past it (very sparse arrays) the key list is
  // used instead, which is cheap exactly when the array is sparse.
  function nextOwnIndex(array, from, length, scan) {
    const scanEnd = MathMin(length, from + scan.budget);
    for (let i = from; i < scanEnd; i++) {
      if (ObjectPrototypeHasOwnProperty(array, i)) {
        scan.budget -= i - from;
        return i;
      }
    }
    scan.budget -= scanEnd - from;
    if (scanEnd === length) return length;
    if (scan.indices === undefined) {
      // Once, in ascending order, then walked with a cursor (`from` only
      // grows): looking through every key for each gap was quadratic.
      const indices = [];
      let ascending = true;
      const keys = ObjectKeys(array);
      for (let i = 0; i < keys.length; i++) {
        if (!isArrayIndexKey(keys[i])) continue;
        const index = +keys[i];
        if (indices.length > 0 && index < indices[indices.length - 1]) ascending = false;
        push(indices, index);
      }
      if (!ascending) ArrayPrototypeSort(indices, (a, b) => a - b);
      scan.indices = indices;
      scan.cursor = 0;
    }
    while (scan.cursor < scan.indices.length && scan.indices[scan.cursor] < from) scan.cursor++;
    return scan.cursor < scan.indices.length ? MathMin(scan.indices[scan.cursor], length) : length;
  }

  function formatArrayEntries(ctx, array, recurseTimes, shape) {
    const length = array.length;
    const output = [];
    let numeric = true;
    const scan = { budget: kHoleScanBudget, indices: undefined, cursor: 0 };
    let i = 0;
    while (i < length && takeItem(output.length)) {
      if (ObjectPrototypeHasOwnProperty(array, i)) {
        const desc = ObjectGetOwnPropertyDescriptor(array, i);
        const item = desc === undefined ? undefined : desc.value;
        if (typeof item !== "number" && typeof item !== "bigint") numeric = false;
        push(output, formatProperty(ctx, array, recurseTimes, i, true));
        i++;
        continue;
      }
      const next = nextOwnIndex(array, i, length, scan);
      push(output, `<${plural(next - i, "empty item")}>`);
      numeric = false;
      i = next;
    }
    if (i < length) push(output, `... ${plural(length - i, "more item")}`);
    shape.numeric = numeric;
    return output;
  }

  function formatTypedArrayEntries(ctx, array) {
    const length = TypedArrayPrototypeGetLength(array);
    const shown = MathMin(length, maxArrayItems, MathMax(itemBudget, 0));
    itemBudget -= shown;
    const output = [];
    for (let i = 0; i < shown; i++) push(output, formatPrimitive(array[i]));
    if (length > shown) push(output, `... ${plural(length - shown, "more item")}`);
    return output;
  }

  function formatMapEntries(ctx, map, recurseTimes) {
    const output = [];
    const iterator = MapPrototypeEntries(map);
    ctx.indentationLvl += 2;
    for (let step = MapIteratorNext(iterator); !step.done; step = MapIteratorNext(iterator)) {
      if (!takeItem(output.length)) break;
      const key = formatValue(ctx, step.value[0], recurseTimes);
      push(output, `${key} => ${formatValue(ctx, step.value[1], recurseTimes)}`);
    }
    ctx.indentationLvl -= 2;
    const remaining = MapPrototypeGetSize(map) - output.length;
    if (remaining > 0) push(output, `... ${plural(remaining, "more item")}`);
    return output;
  }

  function formatSetEntries(ctx, set, recurseTimes) {
    const output = [];
    const iterator = SetPrototypeValues(set);
    ctx.indentationLvl += 2;
    for (let step = SetIteratorNext(iterator); !step.done; step = SetIteratorNext(iterator)) {
      if (!takeItem(output.length)) break;
      push(output, formatValue(ctx, step.value, recurseTimes));
    }
    ctx.indentationLvl -= 2;
    const remaining = SetPrototypeGetSize(set) - output.length;
    if (remaining > 0) push(output, `... ${plural(remaining, "more item")}`);
    return output;
  }

  // Promise state comes from V8; without it we can only say "unknown".
  function formatPromiseEntries(ctx, promise, recurseTimes) {
    if (coreGetPromiseDetails === undefined || coreIsPromise === undefined) return ["<unknown>"];
    const details = coreGetPromiseDetails(promise);
    const state = details[0];
    if (state === 0) return ["<pending>"];
    ctx.indentationLvl += 2;
    const result = formatValue(ctx, details[1], recurseTimes);
    ctx.indentationLvl -= 2;
    return [state === 2 ? `<rejected> ${result}` : result];
  }

  function formatDataViewEntries(ctx, view, recurseTimes) {
    ctx.indentationLvl += 2;
    const buffer = formatValue(ctx, DataViewPrototypeGetBuffer(view), recurseTimes);
    ctx.indentationLvl -= 2;
    return [
      `byteLength: ${DataViewPrototypeGetByteLength(view)}`,
      `byteOffset: ${DataViewPrototypeGetByteOffset(view)}`,
      `buffer: ${buffer}`,
    ];
  }

  // --- inspect: layout ------------------------------------------------------
  // Node's array grouping: many short items are laid out in aligned columns.
  function groupArrayElements(ctx, output, numeric) {
    let totalLength = 0;
    let maxLength = 0;
    let outputLength = output.length;
    // Leave a "... N more items" trailer alone (no item's text starts so).
    if (outputLength > 0 && StringPrototypeSlice(output[outputLength - 1], 0, 4) === "... ") {
      outputLength--;
    }
    const separatorSpace = 2;
    const dataLen = [];
    for (let i = 0; i < outputLength; i++) {
      const len = output[i].length;
      dataLen[i] = len;
      totalLength += len + separatorSpace;
      if (maxLength < len) maxLength = len;
    }
    const actualMax = maxLength + separatorSpace;
    if (actualMax * 3 + ctx.indentationLvl >= ctx.breakLength ||
        (totalLength / actualMax <= 5 && maxLength > 6)) {
      return output;
    }
    const averageBias = MathSqrt(actualMax - totalLength / output.length);
    const biasedMax = MathMax(actualMax - 3 - averageBias, 1);
    const columns = MathMin(
      MathRound(MathSqrt(2.5 * biasedMax * outputLength) / biasedMax),
      MathFloor((ctx.breakLength - ctx.indentationLvl) / actualMax),
      kCompact * 4,
      15,
    );
    if (columns <= 1) return output;
    const maxLineLength = [];
    for (let i = 0; i < columns; i++) {
      let lineLength = 0;
      for (let j = i; j < outputLength; j += columns) {
        if (dataLen[j] > lineLength) lineLength = dataLen[j];
      }
      push(maxLineLength, lineLength + separatorSpace);
    }
    const grouped = [];
    for (let i = 0; i < outputLength; i += columns) {
      const max = MathMin(i + columns, outputLength);
      let line = "";
      let j = i;
      for (; j < max - 1; j++) {
        const cell = `${output[j]}, `;
        line += numeric ? padStart(cell, maxLineLength[j - i]) : padEnd(cell, maxLineLength[j - i]);
      }
      line += numeric ? padStart(output[j], maxLineLength[j - i] - separatorSpace) : output[j];
      push(grouped, line);
    }
    if (outputLength < output.length) push(grouped, output[outputLength]);
    return grouped;
  }

  function isBelowBreakLength(ctx, output, start, base) {
    let totalLength = output.length + start;
    if (totalLength + output.length > ctx.breakLength) return false;
    for (let i = 0; i < output.length; i++) {
      totalLength += output[i].length;
      if (totalLength > ctx.breakLength) return false;
    }
    return base === "" || !contains(base, "\n");
  }

  // One line when it fits and the object is not too deeply nested, else one
  // entry per line (or grouped rows for arrays).
  function reduceToSingleString(ctx, output, base, shape, recurseTimes) {
    const basePart = base === "" ? "" : `${base} `;
    const entries = output.length;
    if (shape.isArrayLike && entries > 6) output = groupArrayElements(ctx, output, shape.numeric);
    if (ctx.currentDepth - recurseTimes < kCompact && entries === output.length) {
      const start = output.length + ctx.indentationLvl + shape.open.length + base.length + 10;
      if (isBelowBreakLength(ctx, output, start, base)) {
        const joined = join(output, ", ");
        if (!contains(joined, "\n")) return `${basePart}${shape.open} ${joined} ${shape.close}`;
      }
    }
    const indentation = `\n${spaces(ctx.indentationLvl)}`;
    return `${basePart}${shape.open}${indentation}  ${join(output, `,${indentation}  `)}${indentation}${shape.close}`;
  }

  // --- inspect: driver ------------------------------------------------------
  function formatCircular(ctx, value) {
    if (ctx.circular === undefined) ctx.circular = new Map();
    let index = MapPrototypeGet(ctx.circular, value);
    if (index === undefined) {
      index = MapPrototypeGetSize(ctx.circular) + 1;
      MapPrototypeSet(ctx.circular, value, index);
    }
    return `[Circular *${index}]`;
  }

  function formatValue(ctx, value, recurseTimes) {
    if (typeof value !== "object" && typeof value !== "function") return formatPrimitive(value);
    if (value === null) return "null";
    // Like Node, show a proxy's target without running any of its traps.
    while (coreGetProxyDetails !== undefined) {
      const details = coreGetProxyDetails(value);
      if (details === null) break;
      if (details[0] === null) return "<Revoked Proxy>";
      value = details[0];
    }
    if (includes(ctx.seen, value)) return formatCircular(ctx, value);
    const seenLength = ctx.seen.length;
    const indentationLvl = ctx.indentationLvl;
    try {
      return formatObject(ctx, value, recurseTimes);
    } catch (error) {
      // Proxies and hostile objects can throw from any trap; never propagate.
      ctx.seen.length = seenLength;
      ctx.indentationLvl = indentationLvl;
      return `[Inspection threw: ${describeThrown(error)}]`;
    }
  }

  function formatObject(ctx, value, recurseTimes) {
    const constructor = getConstructorName(value);
    const tag = getToStringTag(ctx, value, constructor);
    const shape = describeObject(ctx, value, constructor, tag);
    if (shape.count === 0 && shape.keys.length === 0) {
      return shape.base !== "" ? shape.base : shape.open + shape.close;
    }
    if (recurseTimes > ctx.depth) {
      const name = StringPrototypeSlice(getPrefix(constructor, tag, "Object", ""), 0, -1);
      return constructor === null ? name : `[${name}]`;
    }
    recurseTimes += 1;
    push(ctx.seen, value);
    ctx.currentDepth = recurseTimes;
    const output = shape.entries === undefined ? [] : shape.entries(ctx, value, recurseTimes, shape);
    for (let i = 0; i < shape.keys.length; i++) {
      push(output, formatProperty(ctx, value, recurseTimes, shape.keys[i], false));
    }
    ctx.seen.length -= 1;
    let base = shape.base;
    const refIndex = ctx.circular === undefined ? undefined : MapPrototypeGet(ctx.circular, value);
    if (refIndex !== undefined) base = base === "" ? `<ref *${refIndex}>` : `<ref *${refIndex}> ${base}`;
    return reduceToSingleString(ctx, output, base, shape, recurseTimes);
  }

  function readOption(options, name, fallback) {
    try {
      const value = options[name];
      return value === undefined ? fallback : value;
    } catch {
      return fallback;
    }
  }

  // inspect(value, { depth = 2, showHidden = false, breakLength = 80 })
  function inspect(value, options) {
    return formatValue(inspectContext(options), value, 0);
  }

  function inspectContext(options) {
    const ctx = {
      depth: kDefaultDepth, showHidden: false, breakLength: kBreakLength,
      seen: [], circular: undefined, indentationLvl: 0, currentDepth: 0,
      bareError: undefined,
    };
    if (options !== null && typeof options === "object") {
      const depth = readOption(options, "depth", kDefaultDepth);
      ctx.depth = depth === null ? Infinity : +depth;
      if (ctx.depth !== ctx.depth) ctx.depth = kDefaultDepth;
      ctx.showHidden = !!readOption(options, "showHidden", false);
      const breakLength = +readOption(options, "breakLength", kBreakLength);
      ctx.breakLength = breakLength === breakLength ? breakLength : kBreakLength;
    }
    return ctx;
  }

  // --- util.format ------------------------------------------------------------
  // Whether `%s` should inspect the object (its toString is a built-in one)
  // rather than call String() on it.
  function hasBuiltInToString(object) {
    let holder = object;
    while (holder !== null) {
      const desc = ObjectGetOwnPropertyDescriptor(holder, "toString");
      if (desc !== undefined) {
        return holder !== object && includes(builtinToStringHolders, holder);
      }
      holder = ObjectGetPrototypeOf(holder);
    }
    return true;
  }

  function formatString(arg) {
    if (typeof arg === "number") return formatNumber(arg);
    if (typeof arg === "bigint") return `${arg}n`;
    try {
      if (typeof arg === "object" && arg !== null && hasBuiltInToString(arg)) {
        return inspect(arg, { depth: 0 });
      }
      return String(arg);
    } catch (error) {
      return `[Inspection threw: ${describeThrown(error)}]`;
    }
  }

  // Number(x) may run user valueOf; a throw there prints NaN.
  function toNumberText(convert, arg) {
    if (typeof arg === "symbol") return "NaN";
    try {
      return formatNumber(convert(arg));
    } catch {
      return "NaN";
    }
  }

  // `%j`: JSON, `[Circular]` for a cycle as in Node, and what went wrong
  // otherwise (a BigInt, a throwing toJSON) instead of throwing from the log.
  function formatJson(arg) {
    try {
      return `${JSONStringify(arg)}`;
    } catch (error) {
      let message;
      try {
        message = ErrorPrototypeToString(error);
      } catch {
        message = "Error";
      }
      return contains(message, "circular structure") ? "[Circular]" : `[${message}]`;
    }
  }

  // Expands one `%x` directive; undefined means "leave it as written".
  function formatDirective(code, arg) {
    switch (code) {
      case 115: return formatString(arg); // s
      case 100: // d
        return typeof arg === "bigint" ? `${arg}n` : toNumberText(Number, arg);
      case 105: // i
        return typeof arg === "bigint" ? `${arg}n` : toNumberText((x) => NumberParseInt(x), arg);
      case 102: return toNumberText(NumberParseFloat, arg); // f
      case 106: return formatJson(arg); // j
      case 111: return inspect(arg, { showHidden: true, depth: 4 }); // o
      case 79: return inspect(arg); // O
      case 99: return ""; // c: CSS, nothing to print
      default: return undefined;
    }
  }

  function formatArg(arg) {
    return typeof arg === "string" ? arg : inspect(arg);
  }

  // Node's util.format: printf-style directives in a leading string, then
  // the remaining arguments separated by spaces.
  function format(args) {
    if (args.length === 0) return "";
    const first = args[0];
    let next = 0;
    let text = "";
    if (typeof first === "string" && args.length > 1) {
      next = 1;
      let lastPos = 0;
      for (let i = 0; i < first.length - 1; i++) {
        if (StringPrototypeCharCodeAt(first, i) !== 37) continue; // '%'
        const code = StringPrototypeCharCodeAt(first, i + 1);
        if (code === 37) {
          text += StringPrototypeSlice(first, lastPos, i + 1);
          lastPos = i + 2;
          i++;
          continue;
        }
        if (next >= args.length) continue;
        const replacement = formatDirective(code, args[next]);
        if (replacement === undefined) continue;
        text += StringPrototypeSlice(first, lastPos, i) + replacement;
        lastPos = i + 2;
        next++;
        i++;
      }
      text += StringPrototypeSlice(first, lastPos);
    }
    for (let i = next; i < args.length; i++) {
      const part = formatArg(args[i]);
      text = i === 0 ? part : `${text} ${part}`;
    }
    return text;
  }

  // --- console ----------------------------------------------------------------
  const LEVEL_DEBUG = 0;
  const LEVEL_LOG = 1;
  const LEVEL_WARN = 2;
  const LEVEL_ERROR = 3;

  let groupIndent = "";
  const counts = new Map();
  const timerStarts = new Map();
  // deno_core has no `performance`; millisecond resolution is enough here.
  const clock = DateNow;

  function emit(level, text) {
    if (groupIndent !== "") text = groupIndent + indentLines(text, groupIndent);
    opConsole(level, text);
  }

  function formatDuration(ms) {
    if (ms >= 1000) return `${NumberPrototypeToFixed(ms / 1000, 3)}s`;
    return `${+NumberPrototypeToFixed(ms, 3)}ms`;
  }

  function trace(...args) {
    const holder = { name: "Trace", message: format(args) };
    if (typeof ErrorCaptureStackTrace === "function") {
      ErrorCaptureStackTrace(holder, trace);
      emit(LEVEL_ERROR, holder.stack);
      return;
    }
    const stack = `${new Error().stack}`;
    const firstNewline = StringPrototypeIndexOf(stack, "\n");
    const frames = firstNewline === -1 ? "" : StringPrototypeSlice(stack, firstNewline);
    emit(LEVEL_ERROR, `Trace${holder.message === "" ? "" : ": " + holder.message}${frames}`);
  }

  function timeLabel(label) {
    return label === undefined ? "default" : `${label}`;
  }

  function logTime(method, label, data, remove) {
    label = timeLabel(label);
    if (!MapPrototypeHas(timerStarts, label)) {
      emit(LEVEL_WARN, `Warning: No such label '${label}' for console.${method}()`);
      return;
    }
    const elapsed = clock() - MapPrototypeGet(timerStarts, label);
    if (remove) MapPrototypeDelete(timerStarts, label);
    const extra = data.length === 0 ? "" : ` ${format(data)}`;
    emit(LEVEL_LOG, `${label}: ${formatDuration(elapsed)}${extra}`);
  }

  // --- console.table ------------------------------------------------------
  // Box-drawing characters are written as escapes: this file stays ASCII, so
  // V8 keeps its source as a one-byte string (see BOOTSTRAP_JS in mod.rs).
  function renderRow(cells, widths) {
    let line = "\u2502 ";
    for (let i = 0; i < cells.length; i++) {
      const needed = (widths[i] - cells[i].length) / 2;
      line += spaces(MathFloor(needed)) + cells[i] + spaces(MathCeil(needed));
      if (i !== cells.length - 1) line += " \u2502 ";
    }
    return line + " \u2502";
  }

  function renderTable(head, rows) {
    const widths = [];
    for (let i = 0; i < head.length; i++) {
      let width = head[i].length;
      for (let r = 0; r < rows.length; r++) width = MathMax(width, rows[r][i].length);
      push(widths, width);
    }
    const divider = (left, middle, right) => {
      const parts = [];
      for (let i = 0; i < widths.length; i++) push(parts, StringPrototypeRepeat("\u2500", widths[i] + 2));
      return left + join(parts, middle) + right;
    };
    const lines = [divider("\u250c", "\u252c", "\u2510"), renderRow(head, widths), divider("\u251c", "\u253c", "\u2524")];
    for (let r = 0; r < rows.length; r++) push(lines, renderRow(rows[r], widths));
    push(lines, divider("\u2514", "\u2534", "\u2518"));
    return join(lines, "\n");
  }

  // A Map or Set is tabled as Node tables it: by iteration order, with
  // "Key" (a Map's) and "Values" columns, values inspected whole.
  function buildIterationTable(data, cell) {
    const isMap = passes(MapPrototypeGetSize, data);
    const head = isMap ? ["(iteration index)", "Key", "Values"] : ["(iteration index)", "Values"];
    const body = [];
    if (isMap) {
      const iterator = MapPrototypeEntries(data);
      for (let step = MapIteratorNext(iterator); !step.done; step = MapIteratorNext(iterator)) {
        push(body, [`${body.length}`, cell(step.value[0]), cell(step.value[1])]);
      }
    } else {
      const iterator = SetPrototypeValues(data);
      for (let step = SetIteratorNext(iterator); !step.done; step = SetIteratorNext(iterator)) {
        push(body, [`${body.length}`, cell(step.value)]);
      }
    }
    return renderTable(head, body);
  }

  // Columns: "(index)", the rows' own keys (or the given `properties`), and
  // "Values" when some rows are primitives. Cells are inspected at depth 0.
  function buildTable(data, properties) {
    const cell = (value) => inspect(value, { depth: 0, breakLength: Infinity });
    if (passes(MapPrototypeGetSize, data) || passes(SetPrototypeGetSize, data)) {
      return buildIterationTable(data, cell);
    }
    const isRecord = (row) => row !== null && typeof row === "object";
    const indexKeys = ObjectKeys(data);
    const rows = [];
    const columns = [];
    if (ArrayIsArray(properties)) {
      for (let i = 0; i < properties.length; i++) push(columns, `${properties[i]}`);
    }
    let hasValues = false;
    for (let r = 0; r < indexKeys.length; r++) {
      const row = data[indexKeys[r]];
      push(rows, row);
      if (!isRecord(row)) {
        hasValues = true;
      } else if (!ArrayIsArray(properties)) {
        const keys = ObjectKeys(row);
        for (let k = 0; k < keys.length; k++) {
          if (!includes(columns, keys[k])) push(columns, keys[k]);
        }
      }
    }
    const head = ["(index)"];
    for (let c = 0; c < columns.length; c++) push(head, columns[c]);
    if (hasValues) push(head, "Values");
    const body = [];
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r];
      const cells = [indexKeys[r]];
      for (let c = 0; c < columns.length; c++) {
        const present = isRecord(row) && ObjectPrototypeHasOwnProperty(row, columns[c]);
        push(cells, present ? cell(row[columns[c]]) : "");
      }
      if (hasValues) push(cells, isRecord(row) ? "" : cell(row));
      push(body, cells);
    }
    return renderTable(head, body);
  }

  const consoleObject = {
    log: (...args) => emit(LEVEL_LOG, format(args)),
    info: (...args) => emit(LEVEL_LOG, format(args)),
    debug: (...args) => emit(LEVEL_DEBUG, format(args)),
    warn: (...args) => emit(LEVEL_WARN, format(args)),
    error: (...args) => emit(LEVEL_ERROR, format(args)),
    trace,
    dir: (value, options) => emit(LEVEL_LOG, inspect(value, options)),
    dirxml: (...args) => emit(LEVEL_LOG, format(args)),
    assert: (condition, ...args) => {
      if (condition) return;
      if (args.length > 0 && typeof args[0] === "string") {
        args[0] = `Assertion failed: ${args[0]}`;
        emit(LEVEL_ERROR, format(args));
      } else {
        const parts = ["Assertion failed"];
        for (let i = 0; i < args.length; i++) push(parts, args[i]);
        emit(LEVEL_ERROR, format(parts));
      }
    },
    count: (label) => {
      label = timeLabel(label);
      const count = (MapPrototypeGet(counts, label) || 0) + 1;
      MapPrototypeSet(counts, label, count);
      emit(LEVEL_LOG, `${label}: ${count}`);
    },
    countReset: (label) => {
      label = timeLabel(label);
      if (!MapPrototypeHas(counts, label)) {
        emit(LEVEL_WARN, `Count for '${label}' does not exist`);
        return;
      }
      MapPrototypeSet(counts, label, 0);
    },
    time: (label) => {
      label = timeLabel(label);
      if (MapPrototypeHas(timerStarts, label)) {
        emit(LEVEL_WARN, `Warning: Label '${label}' already exists for console.time()`);
        return;
      }
      MapPrototypeSet(timerStarts, label, clock());
    },
    timeLog: (label, ...data) => logTime("timeLog", label, data, false),
    timeEnd: (label) => logTime("timeEnd", label, [], true),
    group: (...label) => {
      if (label.length > 0) emit(LEVEL_LOG, format(label));
      groupIndent += "  ";
    },
    groupCollapsed: (...label) => {
      if (label.length > 0) emit(LEVEL_LOG, format(label));
      groupIndent += "  ";
    },
    groupEnd: () => {
      groupIndent = StringPrototypeSlice(groupIndent, 0, MathMax(0, groupIndent.length - 2));
    },
    clear: () => {},
    table: (data, properties) => {
      if (data === null || typeof data !== "object") {
        emit(LEVEL_LOG, format([data]));
        return;
      }
      try {
        emit(LEVEL_LOG, buildTable(data, properties));
      } catch {
        emit(LEVEL_LOG, format([data]));
      }
    },
  };

  // console is a non-enumerable namespace on the global, as in browsers.
  ObjectDefineProperty(globalThis, "console", {
    value: consoleObject, writable: true, enumerable: false, configurable: true,
  });

  // Web APIs like setTimeout are enumerable on the global in browsers and Node.
  function defineWebGlobal(name, value) {
    ObjectDefineProperty(globalThis, name, { value, writable: true, enumerable: true, configurable: true });
  }

  // --- Timers ---------------------------------------------------------------
  // deno_core's timer objects stay private; user code sees integer ids.
  let nextTimerId = 1;
  const activeTimers = new Map();

  function startTimer(callback, delay, args, isRepeat) {
    if (typeof callback !== "function") {
      throw new TypeError('The "callback" argument must be of type function');
    }
    const after = typeof delay === "number" ? delay : Number(delay);
    const id = nextTimerId++;
    const fire = () => {
      if (!isRepeat) MapPrototypeDelete(activeTimers, id);
      ReflectApply(callback, globalThis, args);
    };
    MapPrototypeSet(activeTimers, id, coreCreateTimer(fire, after, undefined, isRepeat, true));
    return id;
  }

  // Works for both kinds, like browsers; unknown ids are ignored.
  function clearTimer(id) {
    if (typeof id !== "number" && typeof id !== "string") return;
    const key = +id;
    const timer = MapPrototypeGet(activeTimers, key);
    if (timer === undefined) return;
    MapPrototypeDelete(activeTimers, key);
    coreCancelTimer(timer);
  }

  defineWebGlobal("setTimeout", function setTimeout(callback, delay, ...args) {
    return startTimer(callback, delay, args, false);
  });
  defineWebGlobal("setInterval", function setInterval(callback, delay, ...args) {
    return startTimer(callback, delay, args, true);
  });
  defineWebGlobal("clearTimeout", function clearTimeout(id) {
    clearTimer(id);
  });
  defineWebGlobal("clearInterval", function clearInterval(id) {
    clearTimer(id);
  });

  // --- queueMicrotask -------------------------------------------------------
  // deno_core's own calls a native queueMicrotask that V8 installs only with
  // a flag and never in a runtime built from a snapshot, which every runtime
  // here is: it threw "enqueue is not a function". A promise reaction is a
  // microtask too, queued in the same order; an exception in the callback is
  // reported as deno_core reports one from a timer (the execution fails).
  const PromisePrototypeThen = uncurryThis(PromisePrototype.then);
  const settled = Promise.resolve();
  const reportException = core.reportUnhandledException;
  defineWebGlobal("queueMicrotask", function queueMicrotask(callback) {
    if (typeof callback !== "function") {
      throw new TypeError('The "callback" argument must be of type function');
    }
    PromisePrototypeThen(settled, () => {
      try {
        callback();
      } catch (error) {
        reportException(error);
      }
    });
  });

  // --- structuredClone, TextEncoder, TextDecoder ---------------------------
  // structuredClone is V8's own serializer (deno_core's op), as in browsers:
  // Maps, Sets, Dates, typed arrays, errors and cycles survive; a function or
  // a symbol is refused.
  const coreStructuredClone = core.structuredClone;
  const coreEncode = core.encode;
  const coreDecode = core.decode;
  const Uint8ArrayCtor = Uint8Array;
  const ArrayBufferIsView = ArrayBuffer.isView;
  const TypedArrayPrototypeGetBuffer = getter(TypedArrayPrototype, "buffer");
  const TypedArrayPrototypeGetByteOffset = getter(TypedArrayPrototype, "byteOffset");
  const TypedArrayPrototypeGetByteLength = getter(TypedArrayPrototype, "byteLength");

  defineWebGlobal("structuredClone", function structuredClone(value) {
    if (arguments.length === 0) throw new TypeError("1 argument required, but only 0 present.");
    return coreStructuredClone(value);
  });

  // UTF-8 only, the one encoding the Encoding standard lets TextEncoder use.
  class TextEncoder {
    get encoding() {
      return "utf-8";
    }
    encode(input = "") {
      return coreEncode(`${input}`);
    }
  }

  const utf8Labels = ["utf-8", "utf8", "unicode-1-1-utf-8"];

  // The bytes of an ArrayBuffer or a view of one, as a Uint8Array.
  function bytesOf(input) {
    if (passes(ArrayBufferPrototypeGetByteLength, input)) return new Uint8ArrayCtor(input);
    if (ArrayBufferIsView(input)) {
      if (TypedArrayPrototypeGetTag(input) !== undefined) {
        return new Uint8ArrayCtor(
          TypedArrayPrototypeGetBuffer(input),
          TypedArrayPrototypeGetByteOffset(input),
          TypedArrayPrototypeGetByteLength(input),
        );
      }
      return new Uint8ArrayCtor(
        DataViewPrototypeGetBuffer(input),
        DataViewPrototypeGetByteOffset(input),
        DataViewPrototypeGetByteLength(input),
      );
    }
    throw new TypeError("The provided value is not an ArrayBuffer or a view of one.");
  }

  // Whether `bytes` is well-formed UTF-8 (for a fatal decoder).
  function isWellFormedUtf8(bytes) {
    const length = bytes.length;
    for (let i = 0; i < length;) {
      const first = bytes[i];
      if (first < 0x80) {
        i++;
        continue;
      }
      let count;
      let min;
      if (first >= 0xc2 && first <= 0xdf) {
        count = 1;
        min = 0x80;
      } else if (first >= 0xe0 && first <= 0xef) {
        count = 2;
        min = 0x800;
      } else if (first >= 0xf0 && first <= 0xf4) {
        count = 3;
        min = 0x10000;
      } else {
        return false;
      }
      let point = first & (0x3f >> count);
      for (let j = 1; j <= count; j++) {
        const next = bytes[i + j];
        if (next === undefined || (next & 0xc0) !== 0x80) return false;
        point = (point << 6) | (next & 0x3f);
      }
      if (point < min || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) return false;
      i += count + 1;
    }
    return true;
  }

  class TextDecoder {
    #fatal;
    #ignoreBOM;
    constructor(label = "utf-8", options = undefined) {
      const name = StringPrototypeToLowerCase(StringPrototypeTrim(`${label}`));
      if (!includes(utf8Labels, name)) {
        throw new RangeError(`The encoding label provided ('${label}') is not supported: only utf-8 is.`);
      }
      this.#fatal = options != null && !!options.fatal;
      this.#ignoreBOM = options != null && !!options.ignoreBOM;
    }
    get encoding() {
      return "utf-8";
    }
    get fatal() {
      return this.#fatal;
    }
    get ignoreBOM() {
      return this.#ignoreBOM;
    }
    decode(input = new Uint8ArrayCtor(0), options = undefined) {
      if (options != null && options.stream) {
        throw new TypeError("TextDecoder: streaming ({ stream: true }) is not supported.");
      }
      const bytes = bytesOf(input);
      if (this.#fatal && !isWellFormedUtf8(bytes)) {
        throw new TypeError("The encoded data was not valid utf-8.");
      }
      const text = coreDecode(bytes);
      // deno_core drops a leading BOM; ignoreBOM means keep it.
      const bom = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
      return this.#ignoreBOM && bom ? `\ufeff${text}` : text;
    }
  }

  defineWebGlobal("TextEncoder", TextEncoder);
  defineWebGlobal("TextDecoder", TextDecoder);

  // --- crypto.getRandomValues, crypto.randomUUID ----------------------------
  // The operating system's randomness (getrandom(2)) through our op; no
  // crypto.subtle.
  const opRandomFill = core.ops.op_mcp_random_fill;
  // The Web Crypto API's bound on one call.
  const MAX_RANDOM_BYTES = 65536;
  const floatArrayTags = ["Float16Array", "Float32Array", "Float64Array"];

  const crypto = {
    getRandomValues(array) {
      const tag = TypedArrayPrototypeGetTag(array);
      if (tag === undefined || includes(floatArrayTags, tag)) {
        throw new TypeError("crypto.getRandomValues takes an integer typed array (Uint8Array, Int32Array, ...)");
      }
      const byteLength = TypedArrayPrototypeGetByteLength(array);
      if (byteLength > MAX_RANDOM_BYTES) {
        const error = new Error(
          `crypto.getRandomValues fills at most ${MAX_RANDOM_BYTES} bytes at once; ${byteLength} were asked for`,
        );
        error.name = "QuotaExceededError";
        throw error;
      }
      opRandomFill(new Uint8ArrayCtor(
        TypedArrayPrototypeGetBuffer(array),
        TypedArrayPrototypeGetByteOffset(array),
        byteLength,
      ));
      return array;
    },
    randomUUID() {
      const bytes = new Uint8ArrayCtor(16);
      opRandomFill(bytes);
      bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
      bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 9562 variant
      let uuid = "";
      for (let i = 0; i < 16; i++) {
        if (i === 4 || i === 6 || i === 8 || i === 10) uuid += "-";
        uuid += StringPrototypeSlice(NumberPrototypeToString(bytes[i] + 256, 16), 1);
      }
      return uuid;
    },
  };
  defineWebGlobal("crypto", crypto);

  // --- performance ------------------------------------------------------------
  // Milliseconds from the worker process's start on the monotonic clock, as
  // Node counts them (only differences mean anything to the code).
  const opNow = core.ops.op_mcp_now;
  const opTimeOrigin = core.ops.op_mcp_time_origin;
  defineWebGlobal("performance", {
    now() {
      return opNow();
    },
    get timeOrigin() {
      return opTimeOrigin();
    },
  });

  // --- atob / btoa --------------------------------------------------------------
  // Both build their output from arrays of character codes, turned into a
  // string a chunk at a time: appending one character at a time makes a
  // string node per character, tens of bytes of heap for each byte of data.
  const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const base64Codes = [];
  // Each ASCII code's 6-bit value, or -1. (A plain array: no ArrayBuffer in
  // the startup snapshot.)
  const base64Values = [];
  for (let code = 0; code < 128; code++) push(base64Values, -1);
  for (let i = 0; i < base64Alphabet.length; i++) {
    const code = StringPrototypeCharCodeAt(base64Alphabet, i);
    push(base64Codes, code);
    base64Values[code] = i;
  }
  const PAD = 61; // "="
  // Character codes per String.fromCharCode call (well under V8's argument limit).
  const CODES_PER_CHUNK = 8192;

  // Collects character codes and the string chunks made of them.
  function codeWriter() {
    const chunks = [];
    let codes = [];
    return {
      add(code) {
        codes[codes.length] = code;
        if (codes.length === CODES_PER_CHUNK) {
          push(chunks, ReflectApply(StringFromCharCode, null, codes));
          codes = [];
        }
      },
      finish() {
        push(chunks, ReflectApply(StringFromCharCode, null, codes));
        return join(chunks, "");
      },
    };
  }

  function invalidCharacter(message) {
    const error = new Error(message);
    error.name = "InvalidCharacterError";
    return error;
  }

  function isAsciiWhitespace(code) {
    return code === 32 || code === 9 || code === 10 || code === 12 || code === 13;
  }

  defineWebGlobal("btoa", function btoa(data) {
    if (arguments.length === 0) throw new TypeError("1 argument required, but only 0 present.");
    const text = `${data}`;
    const length = text.length;
    const out = codeWriter();
    for (let i = 0; i < length; i += 3) {
      const a = StringPrototypeCharCodeAt(text, i);
      const b = i + 1 < length ? StringPrototypeCharCodeAt(text, i + 1) : 0;
      const c = i + 2 < length ? StringPrototypeCharCodeAt(text, i + 2) : 0;
      if (a > 255 || b > 255 || c > 255) {
        throw invalidCharacter("The string to be encoded contains characters outside of the Latin1 range.");
      }
      const triple = (a << 16) | (b << 8) | c;
      out.add(base64Codes[(triple >> 18) & 63]);
      out.add(base64Codes[(triple >> 12) & 63]);
      out.add(i + 1 < length ? base64Codes[(triple >> 6) & 63] : PAD);
      out.add(i + 2 < length ? base64Codes[triple & 63] : PAD);
    }
    return out.finish();
  });

  // Forgiving-base64 decode: ASCII whitespace is ignored, and up to two "="
  // end the data when its length (without whitespace) is a multiple of 4.
  defineWebGlobal("atob", function atob(data) {
    if (arguments.length === 0) throw new TypeError("1 argument required, but only 0 present.");
    const input = `${data}`;
    let length = 0;
    for (let i = 0; i < input.length; i++) {
      if (!isAsciiWhitespace(StringPrototypeCharCodeAt(input, i))) length++;
    }
    let padding = 0;
    if (length % 4 === 0) {
      for (let i = input.length - 1; i >= 0 && padding < 2; i--) {
        const code = StringPrototypeCharCodeAt(input, i);
        if (isAsciiWhitespace(code)) continue;
        if (code !== PAD) break;
        padding++;
      }
    }
    const dataLength = length - padding;
    if (dataLength % 4 === 1) throw invalidCharacter("The string to be decoded is not correctly encoded.");
    const out = codeWriter();
    let buffer = 0;
    let bits = 0;
    for (let i = 0, seen = 0; seen < dataLength; i++) {
      const code = StringPrototypeCharCodeAt(input, i);
      if (isAsciiWhitespace(code)) continue;
      seen++;
      const value = code < 128 ? base64Values[code] : -1;
      if (value < 0) throw invalidCharacter("The string to be decoded is not correctly encoded.");
      buffer = ((buffer << 6) | value) & 0xffffff;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out.add((buffer >> bits) & 255);
      }
    }
    return out.finish();
  });

  // --- Result encoder -------------------------------------------------------
  // Called by Rust on the execution's final value. Strings pass through, JSON
  // for plain data, inspect() for everything JSON cannot express.
  // JSON.stringify renders these as "{}" or drops their content, which would
  // tell the agent nothing about its result; inspect describes them.
  function isOpaqueToJson(value) {
    return TypedArrayPrototypeGetTag(value) !== undefined ||
      passes(MapPrototypeGetSize, value) ||
      passes(SetPrototypeGetSize, value) ||
      passes(ArrayBufferPrototypeGetByteLength, value) ||
      passes(DataViewPrototypeGetByteLength, value) ||
      passes((v) => WeakMapPrototypeHas(v, {}), value) ||
      passes((v) => WeakSetPrototypeHas(v, {}), value) ||
      (value !== RegExpPrototype && passes(RegExpPrototypeGetSource, value)) ||
      isError(value) ||
      isPromise(value);
  }

  // Thrown out of JSON.stringify when the value holds, at any depth,
  // something JSON would render empty or as null: the whole result is then
  // shown by inspect, as such a value alone is.
  const opaqueInside = { __proto__: null };
  function refuseOpaque(key, value) {
    if (typeof value === "object") {
      if (value === null) {
        // An invalid Date's toJSON gives null; `this` holds the Date (read
        // without running a getter a second time).
        const descriptor = ObjectGetOwnPropertyDescriptor(this, key);
        if (descriptor !== undefined && isInvalidDate(descriptor.value)) throw opaqueInside;
      } else {
        const proto = ObjectGetPrototypeOf(value);
        // Plain data, the common case, costs one prototype read.
        if (proto !== ObjectPrototype && proto !== ArrayPrototype && isOpaqueToJson(value)) {
          throw opaqueInside;
        }
      }
    }
    return value;
  }

  function isInvalidDate(value) {
    if (typeof value !== "object" || value === null) return false;
    try {
      return DatePrototypeGetTime(value) !== DatePrototypeGetTime(value);
    } catch {
      return false;
    }
  }

  function encode(value) {
    switch (typeof value) {
      case "string": return value;
      case "undefined": return "undefined";
      case "number": return ObjectIs(value, -0) ? "-0" : `${value}`;
      case "boolean": return `${value}`;
      case "bigint":
      case "symbol":
      case "function": return inspectWhole(value);
    }
    if (value === null) return "null";
    let opaque;
    try {
      opaque = isOpaqueToJson(value) || isInvalidDate(value);
    } catch {
      // A proxy that cannot be looked into (revoked, or its traps throw):
      // inspect shows it without running its traps.
      opaque = true;
    }
    if (opaque) return inspectWhole(value);
    let json;
    try {
      json = JSONStringify(value, refuseOpaque);
    } catch {
      json = undefined;
    }
    return typeof json === "string" ? json : inspectWhole(value);
  }

  // A result JSON cannot express, at every depth and length; nesting too
  // deep for the stack is cut at a depth that fits.
  function inspectWhole(value) {
    const show = (depth) => whole(() => inspect(value, { depth }), kResultItems, kResultChars);
    try {
      return show(Infinity);
    } catch {
      return show(kWholeFallbackDepth);
    }
  }

  function defineLocked(key, value) {
    ObjectDefineProperty(globalThis, key, { value, writable: false, enumerable: false, configurable: false });
  }

  // How deno_core words an uncaught exception (the error of a failed
  // execution): as console.log shows the value. An Error keeps its stack and
  // gains its own properties, cause and aggregated errors; any other value
  // is shown instead of V8's "#<Object>". A callback is runtime state, not
  // heap, so the engine installs it in every runtime before the code runs.
  const opSetFormatExceptionCallback = core.ops.op_set_format_exception_callback;
  // An error without frames (a SyntaxError V8 raised compiling the code) is
  // shown bare, `SyntaxError: msg`, not as `[SyntaxError: msg]`: the engine
  // adds where it happened, as for any other failure.
  function formatException(value) {
    try {
      const ctx = inspectContext(undefined);
      ctx.bareError = value;
      return whole(() => formatValue(ctx, value, 0), kErrorItems, kErrorChars);
    } catch {
      return null;
    }
  }
  function installExceptionFormatter() {
    opSetFormatExceptionCallback(formatException);
  }

  defineLocked(SymbolFor("mcp-v8.encode"), encode);
  defineLocked(SymbolFor("mcp-v8.inspect"), inspect);
  defineLocked(SymbolFor("mcp-v8.installExceptionFormatter"), installExceptionFormatter);

  // This file runs once, into the startup snapshot, and the snapshot keeps the
  // bytecode of every function that has run. So the functions the engine
  // calls in every execution run here once: otherwise each execution's
  // isolate compiles them afresh when it first calls them, a tenth of a
  // millisecond, several percent of a trivial execution. (The callback this
  // installs is not part of the snapshot.)
  installExceptionFormatter();
  for (const value of [0, [0], { a: 0 }]) encode(value);
})();
