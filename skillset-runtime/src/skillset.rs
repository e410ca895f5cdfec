//! The typed API: `Skillset` (what a generated type is), `Supports<T>` (which tasks it
//! runs) and the task marker types.

use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use crate::device::{DType, DeviceSpec};
use crate::error::Result;
use crate::info::Scope;
use crate::pipeline::{LoadOptions, Pipeline};
use crate::Task;

/// A task as a type, so that `Supports<T>` can be checked at compile time.
pub trait TaskType: Send + Sync + 'static {
    const TASK: Task;
}

/// One marker type per [`Task`], named after the variant.
pub mod task {
    use super::TaskType;
    use crate::Task;

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {
            $(
                #[doc = concat!("The task `", stringify!($name), "` as a type (see [`Task::", stringify!($name), "`]).")]
                #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
                pub struct $name;
                impl TaskType for $name {
                    const TASK: Task = Task::$name;
                }
            )*

            /// The marker type name of every task, in `Task::ALL` order.
            pub const MARKER_NAMES: &[&str] = &[$(stringify!($name)),*];
        };
    }

    markers!(
        AnyToAny,
        AudioClassification,
        AutomaticSpeechRecognition,
        Decision,
        DepthEstimation,
        DocumentQuestionAnswering,
        FeatureExtraction,
        FillMask,
        ImageClassification,
        ImageFeatureExtraction,
        ImageSegmentation,
        ImageTextToText,
        KeypointMatching,
        MaskGeneration,
        ObjectDetection,
        QuestionAnswering,
        TableQuestionAnswering,
        Text2TextGeneration,
        TextClassification,
        TextGeneration,
        TextToAudio,
        TokenClassification,
        VideoClassification,
        ZeroShotAudioClassification,
        ZeroShotClassification,
        ZeroShotImageClassification,
        ZeroShotObjectDetection,
    );
}

/// A skillset: a generated model type (`skillsets::Bert`) or a struct under
/// `#[skillset(...)]`. Initialising it for a task it does not run does not compile.
///
/// ```no_run
/// use skillset_runtime::{skillset, task::FillMask, Skillset};
///
/// #[skillset(family = "bert")]
/// struct MyBert;
///
/// # fn main() -> skillset_runtime::Result<()> {
/// let fill = MyBert::init_cpu::<FillMask>("path/to/checkpoint")?;
/// for p in fill.call("Paris is the [MASK] of France.")? {
///     println!("{} {:.3}", p.token_str, p.score);
/// }
/// # Ok(()) }
/// ```
pub trait Skillset: Sized + 'static {
    /// The model type or family this skillset stands for.
    const SCOPE: Scope;

    /// Load a checkpoint (a directory, or a model id in the local Hugging Face cache)
    /// for task `T` with explicit options.
    fn init_with<T: TaskType>(
        checkpoint: impl AsRef<Path>,
        options: &LoadOptions,
    ) -> Result<Endpoint<T>>
    where
        Self: Supports<T>,
    {
        let pipeline =
            Pipeline::load_for_scope(Self::SCOPE, checkpoint.as_ref(), T::TASK, options)?;
        Ok(Endpoint::new(pipeline))
    }

    /// Load on `device` in f32.
    fn init<T: TaskType>(checkpoint: impl AsRef<Path>, device: DeviceSpec) -> Result<Endpoint<T>>
    where
        Self: Supports<T>,
    {
        Self::init_with(checkpoint, &LoadOptions::new(device, DType::F32))
    }

    /// Load on the CPU in f32.
    fn init_cpu<T: TaskType>(checkpoint: impl AsRef<Path>) -> Result<Endpoint<T>>
    where
        Self: Supports<T>,
    {
        Self::init(checkpoint, DeviceSpec::Cpu)
    }

    /// Load on CUDA device `ordinal` in f32. Without the `cuda` feature this is an
    /// error that says so.
    fn init_cuda<T: TaskType>(checkpoint: impl AsRef<Path>, ordinal: usize) -> Result<Endpoint<T>>
    where
        Self: Supports<T>,
    {
        Self::init(checkpoint, DeviceSpec::Cuda(ordinal))
    }

    /// Load on Metal device `ordinal` in f32. Without the `metal` feature this is an
    /// error that says so.
    fn init_metal<T: TaskType>(checkpoint: impl AsRef<Path>, ordinal: usize) -> Result<Endpoint<T>>
    where
        Self: Supports<T>,
    {
        Self::init(checkpoint, DeviceSpec::Metal(ordinal))
    }
}

/// `Self` runs task `T`. Generated for each task a model type's family runs.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not support the task `{T}`",
    label = "`{T}` is not a task of this skillset",
    note = "a skillset implements `Supports<T>` only for the tasks its family runs for the model type; \
            its rustdoc lists them, and `skillset --list-tasks` shows which model types run `{T}`"
)]
pub trait Supports<T: TaskType>: Skillset {}

/// A loaded model ready to serve task `T`; cheap to clone, `Send + Sync`, usable from
/// many threads at once. The per-task `call` methods live next to each task's handler.
pub struct Endpoint<T: TaskType> {
    pipeline: Arc<Pipeline>,
    _task: PhantomData<fn() -> T>,
}

impl<T: TaskType> Clone for Endpoint<T> {
    fn clone(&self) -> Self {
        Endpoint {
            pipeline: self.pipeline.clone(),
            _task: PhantomData,
        }
    }
}

impl<T: TaskType> std::fmt::Debug for Endpoint<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("task", &T::TASK)
            .field("model_type", &self.pipeline.model_type())
            .field("device", &self.pipeline.device_name())
            .field("dtype", &self.pipeline.dtype())
            .finish()
    }
}

impl<T: TaskType> Endpoint<T> {
    pub(crate) fn new(pipeline: Pipeline) -> Self {
        Endpoint {
            pipeline: Arc::new(pipeline),
            _task: PhantomData,
        }
    }

    /// The untyped pipeline underneath (what `skillset run` drives).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
}
