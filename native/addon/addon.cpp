// node-addon-api binding of the Trainer. It only checks arguments and hands whole typed arrays
// to the native code; every native error becomes a JS Error with the native message.
#include <napi.h>

#include <memory>
#include <string>

#include "export.h"
#include "trainer.h"

using namespace dyntet;

namespace {

[[noreturn]] void type_error(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

// A Float32Array argument with an exact element count (or null/undefined when optional).
const float* f32(Napi::Env env, const Napi::Object& o, const char* key, size_t count, bool optional) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return nullptr;
    type_error(env, std::string("batch.") + key + " is required (a Float32Array)");
  }
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    type_error(env, std::string("batch.") + key + " must be a Float32Array");
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (count != 0 && a.ElementLength() != count)
    type_error(env, std::string("batch.") + key + " must hold " + std::to_string(count) + " floats, got " +
                        std::to_string(a.ElementLength()));
  return a.Data();
}

// Optional Int32Array of exactly `count` values.
const int* i32(Napi::Env env, const Napi::Object& o, const char* key, size_t count) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return nullptr;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    type_error(env, std::string("batch.") + key + " must be an Int32Array");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  if (a.ElementLength() != count)
    type_error(env, std::string("batch.") + key + " must hold " + std::to_string(count) + " values, got " +
                        std::to_string(a.ElementLength()));
  return a.Data();
}

// Frame data in [0, 1]: a Float32Array, or a Uint8Array of 8-bit values (v / 255, converted on
// the device after a 4x smaller upload). Exactly one of *f / *u is set.
void unit_data(Napi::Env env, const Napi::Object& o, const char* key, size_t count, const float** f, const uint8_t** u) {
  Napi::Value v = o.Get(key);
  *f = nullptr;
  *u = nullptr;
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    Napi::Uint8Array a = v.As<Napi::Uint8Array>();
    if (a.ElementLength() != count)
      type_error(env, std::string("batch.") + key + " must hold " + std::to_string(count) + " bytes, got " +
                          std::to_string(a.ElementLength()));
    *u = a.Data();
    return;
  }
  if (!v.IsUndefined() && !v.IsNull() && !(v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array))
    type_error(env, std::string("batch.") + key + " must be a Float32Array or a Uint8Array");
  *f = f32(env, o, key, count, false);
}

Napi::Object config_to_js(Napi::Env env, const TrainerConfig& c) {
  Napi::Object o = Napi::Object::New(env);
  for (const ConfigField& f : trainer_config_fields()) o.Set(f.name, Napi::Number::New(env, config_get(c, f)));
  return o;
}

TrainerConfig config_from_js(Napi::Env env, Napi::Value v) {
  TrainerConfig c;
  if (v.IsUndefined() || v.IsNull()) return c;
  if (!v.IsObject()) type_error(env, "config must be an object of numbers (see docs/training.md)");
  Napi::Object o = v.As<Napi::Object>();
  const auto& fields = trainer_config_fields();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).ToString();
    const ConfigField* f = nullptr;
    for (const auto& x : fields) if (k == x.name) f = &x;
    if (!f) type_error(env, "unknown config key '" + k + "' (keys are listed in docs/training.md)");
    Napi::Value val = o.Get(k);
    if (!val.IsNumber()) type_error(env, "config." + k + " must be a number");
    config_set(c, *f, val.As<Napi::Number>().DoubleValue());
  }
  return c;
}

class JsTrainer : public Napi::ObjectWrap<JsTrainer> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Trainer",
                       {InstanceMethod("step", &JsTrainer::Step), InstanceMethod("render", &JsTrainer::Render),
                        InstanceMethod("saveCheckpoint", &JsTrainer::Save), InstanceMethod("loadCheckpoint", &JsTrainer::Load),
                        InstanceMethod("getParameters", &JsTrainer::Params), InstanceMethod("config", &JsTrainer::Config),
                        InstanceMethod("extractMesh", &JsTrainer::Mesh), InstanceMethod("stepCount", &JsTrainer::StepCount),
                        InstanceMethod("exportAsset", &JsTrainer::Export),
                        InstanceMethod("startFromMasks", &JsTrainer::StartFromMasks)});
  }

  JsTrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsTrainer>(info) {
    Napi::Env env = info.Env();
    const TrainerConfig cfg = config_from_js(env, info[0]);
    std::string device = "cpu";
    if (info.Length() > 1 && info[1].IsString()) device = info[1].As<Napi::String>();
    if (device != "cpu" && device != "cuda") type_error(env, "device must be 'cpu' or 'cuda', got '" + device + "'");
    try {
      t_.reset(new Trainer(cfg, device == "cuda" ? Device::CUDA : Device::CPU));
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

 private:
  Trainer& T(Napi::Env env) {
    if (!t_) throw Napi::Error::New(env, "trainer is not initialised");
    return *t_;
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) type_error(env, "step(batch) needs a batch object");
    Napi::Object o = info[0].As<Napi::Object>();
    Trainer& t = T(env);
    const TrainerConfig& c = t.config();
    if (!o.Get("frames").IsNumber()) type_error(env, "batch.frames must be a number");
    const int B = o.Get("frames").As<Napi::Number>().Int32Value();
    if (B < 1 || B > 64) type_error(env, "batch.frames must be in [1, 64]");
    const size_t HW = (size_t)c.width * c.height;
    Batch b;
    b.frames = B;
    unit_data(env, o, "images", B * HW * 3, &b.images, &b.images_u8);
    unit_data(env, o, "masks", B * HW, &b.masks, &b.masks_u8);
    b.poses = f32(env, o, "poses", (size_t)B * 16, false);
    b.windows = f32(env, o, "windows", (size_t)B * c.cond_window * 52, false);
    b.boxes = f32(env, o, "boxes", (size_t)B * 12, true);
    b.frame_ids = i32(env, o, "frameIds", (size_t)B);
    b.prior_points = f32(env, o, "priorPoints", 0, true);
    if (b.prior_points) {
      const size_t n = o.Get("priorPoints").As<Napi::Float32Array>().ElementLength();
      if (n % 3) type_error(env, "batch.priorPoints must hold x,y,z triples");
      b.prior_count = (int)(n / 3);
    }
    b.motion_targets = f32(env, o, "motionTargets", (size_t)B * b.prior_count * 3, true);
    if (b.motion_targets && !b.prior_points) type_error(env, "batch.motionTargets needs batch.priorPoints (the rest positions of the same landmarks)");
    StepLosses l;
    try { l = t.step(b); } catch (const std::exception& e) { throw Napi::Error::New(env, e.what()); }
    Napi::Object r = Napi::Object::New(env);
    r.Set("total", l.total); r.Set("photo", l.photo); r.Set("silhouette", l.silhouette); r.Set("ssim", l.ssim); r.Set("box", l.box);
    r.Set("prior", l.prior); r.Set("elastic", l.elastic); r.Set("sdfReg", l.sdf_reg); r.Set("poseReg", l.pose_reg); r.Set("motion", l.motion);
    r.Set("triangles", l.triangles); r.Set("coveredPixels", l.covered_pixels); r.Set("skipped", l.skipped);
    return r;
  }

  Napi::Value Render(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) type_error(env, "render(frame) needs {pose, window, background?}");
    Napi::Object o = info[0].As<Napi::Object>();
    Trainer& t = T(env);
    const TrainerConfig& c = t.config();
    const size_t HW = (size_t)c.width * c.height;
    const float* pose = f32(env, o, "pose", 16, false);
    const float* window = f32(env, o, "window", (size_t)c.cond_window * 52, false);
    const float* bg = f32(env, o, "background", HW * 3, true);
    Napi::Float32Array rgb = Napi::Float32Array::New(env, HW * 3);
    Napi::Float32Array cov = Napi::Float32Array::New(env, HW);
    try { t.render(pose, window, bg, rgb.Data(), cov.Data()); } catch (const std::exception& e) { throw Napi::Error::New(env, e.what()); }
    Napi::Object r = Napi::Object::New(env);
    r.Set("rgb", rgb); r.Set("coverage", cov); r.Set("width", c.width); r.Set("height", c.height);
    return r;
  }

  Napi::Value Save(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<uint8_t> blob;
    try { blob = T(env).save_checkpoint(); } catch (const std::exception& e) { throw Napi::Error::New(env, e.what()); }
    return Napi::Buffer<uint8_t>::Copy(env, blob.data(), blob.size());
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      type_error(env, "loadCheckpoint(bytes) needs a Uint8Array or Buffer");
    Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
    try { T(env).load_checkpoint(a.Data(), a.ElementLength()); } catch (const std::exception& e) { throw Napi::Error::New(env, e.what()); }
    return env.Undefined();
  }

  Napi::Value Params(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Trainer& t = T(env);
    std::vector<float> p;
    try { p = t.parameters(); } catch (const std::exception& e) { throw Napi::Error::New(env, e.what()); }
    Napi::Float32Array data = Napi::Float32Array::New(env, p.size());
    std::memcpy(data.Data(), p.data(), p.size() * 4);
    Napi::Array layout = Napi::Array::New(env);
    uint32_t i = 0;
    for (const ParamBlock& b : t.layout()) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("name", b.name); e.Set("offset", (double)b.offset); e.Set("count", (double)b.count);
      layout.Set(i++, e);
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("data", data); r.Set("layout", layout);
    return r;
  }

  // startFromMasks({frames, masks: Uint8Array frames x H x W, poses: Float32Array frames x 16,
  //                 vote?, expand?}) -> number of grid vertices inside (start_shape.h).
  Napi::Value StartFromMasks(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) type_error(env, "startFromMasks(options) needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    Trainer& t = T(env);
    const TrainerConfig& c = t.config();
    if (!o.Get("frames").IsNumber()) type_error(env, "startFromMasks: frames must be a number");
    const int n = o.Get("frames").As<Napi::Number>().Int32Value();
    if (n < 1 || n > 100000) type_error(env, "startFromMasks: frames must be in [1, 100000]");
    Napi::Value m = o.Get("masks");
    const size_t count = (size_t)n * c.width * c.height;
    if (!m.IsTypedArray() || m.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        m.As<Napi::Uint8Array>().ElementLength() != count)
      type_error(env, "startFromMasks: masks must be a Uint8Array of frames x height x width = " + std::to_string(count) + " bytes");
    const float* poses = f32(env, o, "poses", (size_t)n * 16, false);
    const float vote = o.Get("vote").IsNumber() ? o.Get("vote").As<Napi::Number>().FloatValue() : 0.9f;
    const float expand = o.Get("expand").IsNumber() ? o.Get("expand").As<Napi::Number>().FloatValue() : 1.3f;
    int inside = 0;
    try { inside = t.start_from_masks(m.As<Napi::Uint8Array>().Data(), poses, n, vote, expand); }
    catch (const std::exception& e) { throw Napi::Error::New(env, e.what()); }
    return Napi::Number::New(env, inside);
  }

  Napi::Value Config(const Napi::CallbackInfo& info) { return config_to_js(info.Env(), T(info.Env()).config()); }
  Napi::Value StepCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)T(info.Env()).step_count()); }

  Napi::Value Mesh(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::vector<float> m;
    const float* window = nullptr;
    if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) {
      if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
          info[0].As<Napi::Float32Array>().ElementLength() != (size_t)T(env).config().cond_window * 52)
        type_error(env, "extractMesh(window) needs a Float32Array of cond_window x 52 blendshapes");
      window = info[0].As<Napi::Float32Array>().Data();
    }
    try { m = T(env).extract_mesh(window); } catch (const std::exception& e) { throw Napi::Error::New(env, e.what()); }
    Napi::Float32Array a = Napi::Float32Array::New(env, m.size());
    std::memcpy(a.Data(), m.data(), m.size() * 4);
    return a;
  }

  // exportAsset({name, extraJson?, budgetBytes, maxBasis, clips: [{name, fps, coefficients, bake}],
  //              plate?: {encoding: 0|1|2, width, height, bytes}}) -> {bytes, report}
  Napi::Value Export(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) type_error(env, "exportAsset(options) needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    ExportOptions opt;
    if (o.Get("name").IsString()) opt.name = o.Get("name").As<Napi::String>();
    if (o.Get("extraJson").IsString()) opt.extra_json = o.Get("extraJson").As<Napi::String>();
    if (o.Get("budgetBytes").IsNumber()) opt.budget_bytes = (size_t)o.Get("budgetBytes").As<Napi::Number>().DoubleValue();
    if (o.Get("maxBasis").IsNumber()) opt.max_basis = o.Get("maxBasis").As<Napi::Number>().Int32Value();
    if (o.Get("clips").IsArray()) {
      Napi::Array clips = o.Get("clips").As<Napi::Array>();
      for (uint32_t i = 0; i < clips.Length(); ++i) {
        if (!clips.Get(i).IsObject()) type_error(env, "exportAsset: clips[" + std::to_string(i) + "] must be an object");
        Napi::Object c = clips.Get(i).As<Napi::Object>();
        ExportClip ec;
        if (!c.Get("name").IsString()) type_error(env, "exportAsset: clips[" + std::to_string(i) + "].name must be a string");
        ec.name = c.Get("name").As<Napi::String>();
        if (c.Get("fps").IsNumber()) ec.fps = c.Get("fps").As<Napi::Number>().FloatValue();
        if (c.Get("bake").IsBoolean()) ec.bake = c.Get("bake").As<Napi::Boolean>();
        const float* k = f32(env, c, "coefficients", 0, false);
        const size_t n = c.Get("coefficients").As<Napi::Float32Array>().ElementLength();
        ec.coefficients.assign(k, k + n);
        opt.clips.push_back(std::move(ec));
      }
    }
    if (o.Get("plate").IsObject()) {
      Napi::Object p = o.Get("plate").As<Napi::Object>();
      Napi::Value b = p.Get("bytes");
      if (!b.IsTypedArray() || b.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
        type_error(env, "exportAsset: plate.bytes must be a Uint8Array");
      Napi::Uint8Array u = b.As<Napi::Uint8Array>();
      opt.has_plate = true;
      opt.plate.encoding = (PlateEncoding)p.Get("encoding").As<Napi::Number>().Uint32Value();
      opt.plate.width = p.Get("width").As<Napi::Number>().Uint32Value();
      opt.plate.height = p.Get("height").As<Napi::Number>().Uint32Value();
      opt.plate.bytes.assign(u.Data(), u.Data() + u.ElementLength());
    }
    std::vector<uint8_t> bytes;
    ExportReport rep;
    try { bytes = export_asset(T(env), opt, &rep); } catch (const std::exception& e) { throw Napi::Error::New(env, e.what()); }
    Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
    std::memcpy(out.Data(), bytes.data(), bytes.size());
    Napi::Object r = Napi::Object::New(env);
    Napi::Object report = Napi::Object::New(env);
    report.Set("tier", rep.tier);
    report.Set("tierDescription", rep.tier_description);
    report.Set("totalBytes", (double)rep.total_bytes);
    report.Set("activeVertices", (double)rep.active_vertices);
    report.Set("basis", rep.basis);
    report.Set("bakeRms", rep.bake_rms);
    report.Set("bakeMax", rep.bake_max);
    Napi::Array chunks = Napi::Array::New(env);
    for (size_t i = 0; i < rep.chunks.size(); ++i) {
      Napi::Object c = Napi::Object::New(env);
      c.Set("type", rep.chunks[i].type); c.Set("label", rep.chunks[i].label); c.Set("bytes", (double)rep.chunks[i].bytes);
      chunks.Set((uint32_t)i, c);
    }
    report.Set("chunks", chunks);
    r.Set("bytes", out);
    r.Set("report", report);
    return r;
  }

  std::unique_ptr<Trainer> t_;
};

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const BackendInfo b = query_backends();
  Napi::Object r = Napi::Object::New(env);
  r.Set("cpu", true);
  r.Set("cudaCompiled", b.cuda_compiled);
  r.Set("cudaUsable", b.cuda_usable);
  r.Set("cudaError", b.cuda_error);
  r.Set("cudaDevice", b.cuda_device);
  return r;
}

Napi::Value DefaultConfig(const Napi::CallbackInfo& info) { return config_to_js(info.Env(), TrainerConfig{}); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Trainer", JsTrainer::Define(env));
  exports.Set("backends", Napi::Function::New(env, Backends));
  exports.Set("defaultConfig", Napi::Function::New(env, DefaultConfig));
  return exports;
}

}  // namespace

NODE_API_MODULE(dyntet_addon, Init)
