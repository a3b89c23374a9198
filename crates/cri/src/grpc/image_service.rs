//! `runtime.v1.ImageService` over the image backend.

use tonic::{Request, Response, Status};

use super::{chunked, idempotent, require, CriServer, GrpcStream};
use crate::api::image_service_server::ImageService;
use crate::api::*;
use crate::error::{CriError, CriResult};
use crate::types;

type R<T> = Result<Response<T>, Status>;

/// The image spec of a request, with its reference set.
fn image_spec(spec: Option<ImageSpec>) -> CriResult<ImageSpec> {
    let spec = spec.ok_or_else(|| CriError::missing("image"))?;
    require(&spec.image, "image.image")?;
    Ok(spec)
}

/// ListImages/StreamImages filter: an image spec with an empty reference filters nothing.
fn filter_spec(filter: Option<ImageFilter>) -> Option<ImageSpec> {
    filter
        .and_then(|f| f.image)
        .filter(|spec| !spec.image.is_empty())
}

#[tonic::async_trait]
impl ImageService for CriServer {
    async fn list_images(&self, req: Request<ListImagesRequest>) -> R<ListImagesResponse> {
        let filter = filter_spec(req.into_inner().filter);
        let images = self.backends.images.list_images(filter.as_ref()).await?;
        Ok(Response::new(ListImagesResponse { images }))
    }

    type StreamImagesStream = GrpcStream<StreamImagesResponse>;

    async fn stream_images(
        &self,
        req: Request<StreamImagesRequest>,
    ) -> R<Self::StreamImagesStream> {
        let filter = filter_spec(req.into_inner().filter);
        let images = self.backends.images.list_images(filter.as_ref()).await?;
        Ok(Response::new(chunked(images, |images| {
            StreamImagesResponse { images }
        })))
    }

    async fn image_status(&self, req: Request<ImageStatusRequest>) -> R<ImageStatusResponse> {
        let req = req.into_inner();
        let spec = image_spec(req.image)?;
        let status = self
            .backends
            .images
            .image_status(&spec, req.verbose)
            .await?;
        Ok(Response::new(match status {
            Some(s) => ImageStatusResponse {
                image: Some(s.status),
                info: if req.verbose {
                    s.info
                } else {
                    Default::default()
                },
            },
            // Not present: an empty answer, which the kubelet reads as "pull it".
            None => ImageStatusResponse::default(),
        }))
    }

    async fn pull_image(&self, req: Request<PullImageRequest>) -> R<PullImageResponse> {
        let req = req.into_inner();
        let image = image_spec(req.image)?;
        let image_ref = self
            .backends
            .images
            .pull_image(types::PullImage {
                image,
                auth: req.auth.map(Into::into),
                sandbox_config: req.sandbox_config,
            })
            .await?;
        Ok(Response::new(PullImageResponse { image_ref }))
    }

    async fn remove_image(&self, req: Request<RemoveImageRequest>) -> R<RemoveImageResponse> {
        let spec = image_spec(req.into_inner().image)?;
        idempotent(self.backends.images.remove_image(&spec).await)?;
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(&self, _req: Request<ImageFsInfoRequest>) -> R<ImageFsInfoResponse> {
        let fs = self.backends.images.image_fs_info().await?;
        Ok(Response::new(ImageFsInfoResponse {
            image_filesystems: fs.image_filesystems,
            container_filesystems: fs.container_filesystems,
        }))
    }
}
